"""The UCR/UEA tasks: official splits read from the aeon wheel, verified and shaped as promised."""

from __future__ import annotations

import shutil
from functools import cache

import pytest
import torch

from conftest import compose_config
from convrec.data.checksums import digest
from convrec.data.contract import RawSplits, load_meta
from convrec.data.prepare import prepare_task
from convrec.data.tasks import TASKS, ucr
from convrec.errors import ConvrecError

# task: (train size, test size, channels, steps, classes), as published with each archive
OFFICIAL = {
    "gunpoint": (50, 150, 1, 150, ["1", "2"]),
    "italy_power_demand": (67, 1029, 1, 24, ["1", "2"]),
    "arrowhead": (36, 175, 1, 251, ["0", "1", "2"]),
    "osuleaf": (200, 242, 1, 427, ["1", "2", "3", "4", "5", "6"]),
    "japanese_vowels": (270, 370, 12, 29, [str(k) for k in range(1, 10)]),
    "basic_motions": (40, 40, 6, 100, ["badminton", "running", "standing", "walking"]),
}


@cache
def loaded(task: str) -> RawSplits:
    cfg = compose_config("prepare", [f"task={task}"]).task
    assert cfg.name == task
    return TASKS.get(task)(cfg, None)  # reads nothing from raw_dir


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_each_task_loads_its_official_split(task):
    n_train, n_test, channels, steps, classes = OFFICIAL[task]
    raw = loaded(task)
    assert raw.input_kind == "sequence" and raw.target_kind == "class" and raw.normalize
    assert raw.train.x.shape == (n_train, channels, steps) and raw.train.x.dtype == torch.float32
    assert raw.test.x.shape == (n_test, channels, steps) and raw.test.x.dtype == torch.float32
    assert raw.train.y.dtype == raw.test.y.dtype == torch.int64
    assert raw.class_names == classes
    for y in (raw.train.y, raw.test.y):
        assert y.min() >= 0 and y.max() < len(classes)
    assert set(raw.train.y.tolist()) == set(range(len(classes)))
    assert torch.isfinite(raw.train.x).all() and torch.isfinite(raw.test.x).all()
    assert 0 < raw.baseline["value"] < 100

    # Fawaz et al.'s protocol: the whole official train split trains, the final epoch is tested.
    cfg = compose_config("prepare", [f"task={task}"]).task
    assert cfg.val_size == 0 and cfg.select == "last"


@pytest.mark.parametrize("task", sorted(OFFICIAL))
def test_sources_are_the_sha256_of_the_files_read(task):
    dataset = ucr.DATASETS[task][0]
    sources = loaded(task).sources
    assert sorted(sources) == [
        f"aeon-{ucr.AEON_VERSION}/{dataset}/{dataset}_{split}.ts" for split in ("TEST", "TRAIN")
    ]
    for key, sha in sources.items():
        assert digest(ucr.aeon_data_dir() / key.split("/", 1)[1]) == sha


def test_japanese_vowels_keeps_its_lengths_and_pads_with_zeros():
    raw = loaded("japanese_vowels")
    for x, lengths in ((raw.train.x, raw.train.lengths), (raw.test.x, raw.test.lengths)):
        assert lengths.dtype == torch.int64 and len(lengths) == len(x)
        assert 7 <= lengths.min() and lengths.max() <= 29
        padded = torch.arange(x.shape[-1])[None, :] >= lengths[:, None]  # (N, T)
        assert (x.abs().sum(dim=1)[padded] == 0).all()
        assert (x.abs().sum(dim=1)[~padded] > 0).all()  # LPC cepstra are never all zero
    assert raw.test.lengths.max() == 29 and raw.train.lengths.max() == 26
    assert loaded("gunpoint").train.lengths is None  # equal-length sets carry no lengths


def test_loading_is_deterministic():
    again = ucr.load_dataset("japanese_vowels")
    first = loaded("japanese_vowels")
    for split in ("train", "test"):
        for name in ("x", "y", "lengths"):
            a, b = (getattr(getattr(raw, split), name) for raw in (again, first))
            assert torch.equal(a, b)


def test_a_missing_file_names_the_aeon_version(tmp_path, monkeypatch):
    monkeypatch.setattr(ucr, "aeon_data_dir", lambda: tmp_path)
    with pytest.raises(ConvrecError, match=r"GunPoint_TRAIN\.ts is missing.*aeon==1\.6\.0"):
        ucr.load_dataset("gunpoint")


def test_a_changed_file_fails_its_checksum(tmp_path, monkeypatch):
    shutil.copytree(ucr.aeon_data_dir() / "GunPoint", tmp_path / "GunPoint")
    victim = tmp_path / "GunPoint/GunPoint_TEST.ts"
    victim.write_bytes(victim.read_bytes() + b"\n")  # still parses: only the checksum can tell
    monkeypatch.setattr(ucr, "aeon_data_dir", lambda: tmp_path)
    with pytest.raises(ConvrecError, match=r"checksum mismatch for .*GunPoint_TEST\.ts"):
        ucr.load_dataset("gunpoint")


def test_prepare_keeps_the_whole_train_split_or_carves_validation_out_of_it(tmp_path):
    task = compose_config("prepare", ["task=japanese_vowels"]).task
    meta = load_meta(prepare_task(task, tmp_path / "prepared", tmp_path / "raw"))
    assert meta["split_sizes"] == {"train": 270, "val": 0, "test": 370}
    task.val_size = 30
    carved = load_meta(prepare_task(task, tmp_path / "carved", tmp_path / "raw"))
    assert carved["split_sizes"] == {"train": 240, "val": 30, "test": 370}
    assert meta["input_shape"] == [12, 29] and meta["variable_length"]
    assert meta["sources"] == loaded("japanese_vowels").sources
