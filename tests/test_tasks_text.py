import dataclasses
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose_config
from convrec.data import sources
from convrec.data.contract import load_meta, load_split
from convrec.data.prepare import prepare_task
from convrec.data.sources import Archive, fetch_archive
from convrec.data.tasks import imdb as imdb_module
from convrec.data.tasks import sst2 as sst2_module
from convrec.data.text import Vocabulary, encode_splits, pad_ids, tokenize
from convrec.errors import ConvrecError


def _task(name: str, profile: str = "quick"):
    """The task's settings as prepare gives them to its loader."""
    task = compose_config("prepare", [f"task={name}"]).task
    return OmegaConf.merge(OmegaConf.to_container(task, resolve=True), {"profile": profile})


# Tokenizer and vocabulary


def test_tokenizer_lowercases_drops_line_breaks_and_splits_punctuation():
    assert tokenize("A GREAT film.<br /><br />Don't miss it!!") == [
        "a", "great", "film", ".", "don't", "miss", "it", "!", "!",
    ]  # fmt: skip
    assert tokenize("end<br/>start <BR>x") == ["end", "start", "x"]
    assert tokenize("it 's 10/10 , does n't") == [
        "it",
        "'",
        "s",
        "10",
        "/",
        "10",
        ",",
        "does",
        "n't",
    ]
    assert tokenize("<pad> <unk>") == ["<", "pad", ">", "<", "unk", ">"]  # never a special token
    assert tokenize("") == [] and tokenize("   ") == []


def test_vocabulary_comes_from_train_only_and_unknown_words_map_to_unk():
    vocab, encoded = encode_splits(
        ["good good film", "bad film", "good"],
        ["good zebra film", ""],
        min_freq=1,
        max_size=100,
        max_len=10,
    )
    assert vocab.tokens == ["<pad>", "<unk>", "good", "film", "bad"]  # by count, then a-z
    test_x, test_lengths = encoded["test"]
    assert test_x[0, :3].tolist() == [2, 1, 3]  # "zebra" is only in test: <unk>
    assert test_lengths.tolist() == [3, 1] and test_x[1, 0] == 1  # an empty text: one <unk>


def test_min_freq_and_max_size_bound_the_vocabulary():
    texts = [tokenize("a a a b b c")]
    assert Vocabulary.build(texts, min_freq=2, max_size=100).tokens == ["<pad>", "<unk>", "a", "b"]
    assert Vocabulary.build(texts, min_freq=1, max_size=3).tokens == ["<pad>", "<unk>", "a"]
    with pytest.raises(ConvrecError, match="max_size=2"):
        Vocabulary.build(texts, min_freq=1, max_size=2)


def test_texts_are_truncated_padded_alike_and_encoded_deterministically():
    train = ["one two three four five", "one"]
    test = ["two two two two two two two"]
    vocab, encoded = encode_splits(train, test, min_freq=1, max_size=50, max_len=4)
    (train_x, train_lengths), (test_x, test_lengths) = encoded["train"], encoded["test"]
    assert train_x.dtype == torch.int64 and train_lengths.dtype == torch.int64
    assert train_x.shape == (2, 4) and test_x.shape == (1, 4)  # both splits share one width
    assert train_lengths.tolist() == [4, 1] and test_lengths.tolist() == [4]
    assert train_x[1].tolist() == [vocab.ids["one"], 0, 0, 0]  # right-padded with <pad>
    again = encode_splits(train, test, min_freq=1, max_size=50, max_len=4)
    assert again[0].tokens == vocab.tokens
    assert all(torch.equal(a, b) for a, b in zip(again[1]["train"], encoded["train"], strict=True))
    with pytest.raises(ConvrecError, match="max_len=0"):
        encode_splits(train, test, min_freq=1, max_size=50, max_len=0)


def test_pad_ids_pads_to_the_width_asked():
    x, lengths = pad_ids([[5, 6], [7]], width=3)
    assert x.tolist() == [[5, 6, 0], [7, 0, 0]] and lengths.tolist() == [2, 1]


# IMDB


def _imdb_tar(path: Path, per_label: int, prefix: str = "") -> Path:
    """An aclImdb-like tar.gz, with the unlabelled reviews and extra files the official one has."""
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("aclImdb/README", "read me")
        add("aclImdb/train/labeledBow.feat", "0:1")
        for split in ("test", "train"):  # stored out of order: the reader sorts
            for label in ("pos", "neg"):
                for review_id in reversed(range(per_label)):
                    add(
                        f"aclImdb/{split}/{label}/{review_id}_7.txt", f"{split} {label} {review_id}"
                    )
            add(f"aclImdb/{split}/unsup/0_0.txt", "unlabelled")
    return path


def test_imdb_reviews_are_read_from_the_tar_sorted_and_counted(tmp_path):
    archive = _imdb_tar(tmp_path / "imdb.tar.gz", per_label=3, prefix="./")
    splits = imdb_module.read_reviews(archive, per_label=3)
    texts, labels = splits["train"]
    assert labels == [0, 1, 0, 1, 0, 1]  # interleaved: any first N reviews are balanced
    assert texts == [f"train {lab} {i}" for i in range(3) for lab in ("neg", "pos")]
    assert splits["test"][0][:2] == ["test neg 0", "test pos 0"]
    with pytest.raises(ConvrecError, match=r"holds \[3, 3\] train reviews per label"):
        imdb_module.read_reviews(archive)  # the real data set has 12,500 per label


def test_imdb_from_the_mirror(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    task = _task("imdb")
    raw = imdb_module.imdb(task, tmp_path / "raw")
    max_len, max_vocab = task.max_len.quick, task.max_vocab.quick
    assert raw.train.x.shape == (25_000, max_len) and raw.test.x.shape == (25_000, max_len)
    assert raw.train.x.dtype == torch.int64 and raw.input_kind == "tokens"
    assert torch.bincount(raw.train.y).tolist() == [12_500, 12_500]
    assert torch.bincount(raw.test.y).tolist() == [12_500, 12_500]
    assert torch.bincount(raw.test.y[:1000]).tolist() == [500, 500]  # a test_limit is balanced
    assert raw.class_names == ["neg", "pos"]
    assert len(raw.vocab) == max_vocab and raw.vocab[:4] == ["<pad>", "<unk>", "the", "."]
    assert int(raw.train.lengths.min()) >= 1 and int(raw.train.lengths.max()) == max_len
    assert int(raw.train.x.max()) < max_vocab
    assert raw.sources == {
        "IMDB/aclImdb_labeled.tar.xz": next(iter(imdb_module.IMDB.mirror.values()))
    }
    assert "<br" not in raw.vocab and "br" not in raw.vocab[:200]


# SST-2


def test_sst2_prepared_from_the_mirror(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    out = prepare_task(
        compose_config("prepare", ["task=sst2"]).task, tmp_path / "p", tmp_path / "r"
    )
    meta = load_meta(out)
    assert meta["input_kind"] == "tokens" and meta["variable_length"]
    assert meta["split_sizes"] == {"train": 67_349 - 3000, "val": 3000, "test": 872}
    assert meta["sources"] == sst2_module.TSV_SHA256
    assert meta["baseline"]["value"] == pytest.approx(100 * 444 / 872, abs=0.01)
    vocab = (out / "vocab.txt").read_text().splitlines()
    assert len(vocab) == meta["vocab_size"] and vocab[:2] == ["<pad>", "<unk>"]
    test = load_split(out, "test", verify_against=meta)
    assert test.x.dtype == torch.int64 and test.x.shape == (872, meta["input_shape"][0])
    assert torch.bincount(test.y).tolist() == [428, 444]
    first = " ".join(vocab[i] for i in test.x[0, : test.lengths[0]])
    assert first == "it ' s a charming and often affecting journey ."


def _sst2_zip(mirror: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name in ("train.tsv", "dev.tsv", "test.tsv"):
            zipped.write(mirror / "SST-2" / name, f"SST-2/{name}")
    return path


def _serve(monkeypatch, files: dict[str, Path]) -> list[str]:
    """Stand in for the network: download_url copies the file served at the url."""
    asked = []

    def download_url(url, root, filename, md5=None):
        asked.append(url)
        if url not in files:
            raise OSError(f"no route to {url}")
        shutil.copyfile(files[url], Path(root) / filename)

    monkeypatch.setattr(sources, "download_url", download_url)
    monkeypatch.delenv("CONVREC_DATA_MIRROR", raising=False)
    return asked


def test_sst2_reads_the_official_zip_once_downloaded(tmp_path, mirror, monkeypatch):
    zipped = _sst2_zip(mirror, tmp_path / "served.zip")
    md5 = hashlib.md5(zipped.read_bytes()).hexdigest()
    archive = dataclasses.replace(sst2_module.SST2, md5=md5)
    monkeypatch.setattr(sst2_module, "SST2", archive)
    asked = _serve(monkeypatch, {archive.url: zipped})

    raw = sst2_module.sst2(_task("sst2"), tmp_path / "raw")
    assert asked == [archive.url] and (tmp_path / "raw/SST-2/SST-2.zip").is_file()
    assert list(raw.sources) == ["SST-2/SST-2.zip"]
    assert raw.train.x.shape[0] == 67_349 and raw.test.x.shape[0] == 872

    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    from_mirror = sst2_module.sst2(_task("sst2"), tmp_path / "raw")
    assert from_mirror.vocab == raw.vocab and torch.equal(from_mirror.test.x, raw.test.x)


# Sources: the official archive or the mirror's files


def _archive(mirror_files: dict[str, str]) -> Archive:
    return Archive("X/x.zip", "https://example.org/x.zip", None, "0" * 32, mirror_files)


def test_fetch_archive_copies_the_mirror_files_and_says_so(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    fetched = fetch_archive(sst2_module.SST2, tmp_path / "raw")
    assert fetched.origin == "mirror" and fetched.sources == sst2_module.TSV_SHA256
    assert fetched.paths["SST-2/dev.tsv"] == tmp_path / "raw/SST-2/dev.tsv"
    assert fetched.paths["SST-2/dev.tsv"].read_bytes() == (mirror / "SST-2/dev.tsv").read_bytes()


def test_a_missing_mirror_file_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(tmp_path))
    with pytest.raises(ConvrecError, match=r"X/a.tsv is missing from the mirror") as err:
        fetch_archive(_archive({"X/a.tsv": "0" * 64}), tmp_path / "raw")
    assert "\n" not in str(err.value)


def test_a_corrupt_mirror_file_is_refused_and_not_copied(tmp_path, monkeypatch):
    (tmp_path / "mirror/X").mkdir(parents=True)
    (tmp_path / "mirror/X/a.tsv").write_text("sentence\tlabel\n")
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ConvrecError, match=r"checksum mismatch for .*X/a.tsv"):
        fetch_archive(_archive({"X/a.tsv": "0" * 64}), tmp_path / "raw")
    assert not (tmp_path / "raw/X/a.tsv").exists()


def test_an_official_file_failing_its_check_is_not_installed(tmp_path, monkeypatch):
    served = tmp_path / "served.zip"
    served.write_bytes(b"not the data set")
    archive = _archive({})
    _serve(monkeypatch, {archive.url: served})
    with pytest.raises(ConvrecError, match=r"md5 .*expected 0000"):
        fetch_archive(archive, tmp_path / "raw")
    assert not (tmp_path / "raw/X/x.zip").exists()


def test_no_network_and_no_mirror_is_a_one_line_error(tmp_path, monkeypatch):
    _serve(monkeypatch, {})
    with pytest.raises(ConvrecError, match="could not download .*set CONVREC_DATA_MIRROR"):
        fetch_archive(_archive({}), tmp_path / "raw")
