import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from convrec.data import sources
from convrec.data.checksums import digest
from convrec.data.contract import load_meta, load_split
from convrec.data.prepare import prepare_task, stratified_sample
from convrec.data.tasks.mnist import MNIST_FILES
from convrec.errors import ConvrecError


def _copy_mnist_mirror(mirror: Path, dest: Path) -> Path:
    shutil.copytree(mirror / "MNIST", dest / "MNIST")
    return dest


def test_prepare_from_a_mirror_copy(tmp_path, mirror, monkeypatch):
    copy = _copy_mnist_mirror(mirror, tmp_path / "mirror")
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(copy))
    task = compose_config("prepare", ["task=mnist"]).task
    out = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")

    meta = load_meta(out)
    assert meta["input_kind"] == "image" and meta["input_shape"] == [1, 28, 28]
    assert meta["num_classes"] == 10
    assert meta["split_sizes"] == {"train": 55000, "val": 5000, "test": 10000}
    assert meta["split_seed"] == 0
    assert meta["sources"] == {f"MNIST/raw/{n}": sha for n, (sha, _) in MNIST_FILES.items()}
    for name, sha in meta["files"].items():
        assert digest(out / name) == sha
    split = load_split(out, "test", verify_against=meta)
    x, y = split.x, split.y
    assert x.dtype == torch.uint8 and x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist()[:2] == [980, 1135]  # the official test split
    assert sorted(p.name for p in out.parent.iterdir()) == ["mnist"]  # no temp leftovers

    # Same seed, same split: a second preparation gives byte-identical tensors.
    again = prepare_task(task, tmp_path / "again", tmp_path / "raw")
    assert load_meta(again)["files"] == meta["files"]


def test_a_corrupted_mirror_file_stops_before_anything_is_written(tmp_path, mirror, monkeypatch):
    copy = _copy_mnist_mirror(mirror, tmp_path / "mirror")
    victim = copy / "MNIST/raw/train-labels-idx1-ubyte.gz"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(copy))
    task = compose_config("prepare", ["task=mnist"]).task

    with pytest.raises(ConvrecError, match="checksum mismatch for .*train-labels-idx1-ubyte.gz"):
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert not (tmp_path / "prepared").exists() or not any((tmp_path / "prepared").iterdir())
    assert not (tmp_path / "raw/MNIST/raw/train-labels-idx1-ubyte.gz").exists()


def test_a_failed_preparation_keeps_the_previous_output(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    task = compose_config("prepare", ["task=mnist1d"]).task
    out = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    before = (out / "meta.json").read_text()
    task.val_size = 10**9  # invalid: fails after generation, before writing
    with pytest.raises(ConvrecError, match="task.val_size"):
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert (out / "meta.json").read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["mnist1d"]


def test_mnist1d_is_generated_as_published(tmp_path):
    task = compose_config("prepare", ["task=mnist1d"]).task
    out = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["input_kind"] == "sequence" and meta["input_shape"] == [1, 40]
    assert meta["split_sizes"] == {"train": 3600, "val": 400, "test": 1000}  # 4000 / 1000
    assert meta["generator"]["seed"] == 42 and meta["generator"]["package"] == "mnist1d"


def test_missing_mirror_file_names_the_fix(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(tmp_path / "mirror"))
    task = compose_config("prepare", ["task=fashion_mnist"]).task
    with pytest.raises(ConvrecError, match="missing from the mirror"):
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")


def test_a_download_follows_the_url_and_checks_the_published_md5(tmp_path, mirror):
    """The downloader the official sources go through, on a file: URL standing in for the
    server; the file that arrives is the one whose md5 MNIST's publisher gives."""
    name = "t10k-labels-idx1-ubyte.gz"
    served = (mirror / "MNIST" / "raw" / name).resolve().as_uri()
    path = sources.download_url(served, str(tmp_path), name, md5=MNIST_FILES[name][1])
    assert digest(path) == MNIST_FILES[name][0]
    with pytest.raises(ConvrecError, match="md5"):
        sources.download_url(served, str(tmp_path), "other.gz", md5="0" * 32)


def test_a_stratified_validation_sample_takes_each_class_in_proportion_and_never_its_last():
    y = torch.tensor([0] * 90 + [1] * 10)
    picked = stratified_sample(y, 10, torch.Generator().manual_seed(0))
    assert torch.bincount(y[picked]).tolist() == [9, 1]
    again = stratified_sample(y, 10, torch.Generator().manual_seed(0))
    assert torch.equal(picked, again)  # seeded
    rare = torch.tensor([0, 0, 1])  # class 1's share of 2 rounds up to its only example
    assert rare[stratified_sample(rare, 2, torch.Generator())].tolist() == [0]
