"""The prepared-data contract (convrec.data.contract): what a loader returns is what prepare
writes, and what readers get back, checked key by key."""

from __future__ import annotations

import json

import pytest
import torch

from convrec.atomic import write_json
from convrec.data.contract import (
    META_KEYS,
    RawSplits,
    Split,
    describe,
    load_meta,
    load_split,
    write_split,
)
from convrec.errors import ConvrecError
from convrec.models.spec import IOSpec


def _raw() -> RawSplits:
    """A variable-length two-class sequence task of 6 train and 4 test series."""
    lengths = torch.tensor([5, 3, 5, 4, 2, 5])

    def split(n: int) -> Split:
        return Split(torch.randn(n, 2, 5), torch.arange(n) % 2, lengths=lengths[:n])

    return RawSplits(train=split(6), test=split(4), input_kind="sequence", class_names=["a", "b"])


def _prepared(tmp_path) -> tuple:
    raw = _raw()
    splits = {"train": raw.train.take(slice(0, 4)), "val": raw.train.take(slice(4, 6)),
              "test": raw.test}  # fmt: skip
    files = {f"{name}.pt": write_split(tmp_path / f"{name}.pt", s) for name, s in splits.items()}
    write_json(tmp_path / "meta.json", describe("toy", "tiny", 0, raw, splits, files))
    return raw, splits


def test_what_a_loader_returns_is_what_readers_get_back(tmp_path):
    raw, splits = _prepared(tmp_path)
    meta = load_meta(tmp_path)
    assert set(meta) == set(META_KEYS)
    assert meta["split_sizes"] == {"train": 4, "val": 2, "test": 4}
    assert meta["variable_length"] and meta["input_shape"] == [2, 5]
    spec = IOSpec.from_meta(meta)
    assert (spec.input_kind, spec.num_classes, spec.steps) == ("sequence", 2, 5)
    val = load_split(tmp_path, "val", verify_against=meta)
    assert isinstance(val, Split) and set(val.tensors()) == {"x", "y", "lengths"}
    assert torch.equal(val.x, raw.train.x[4:]) and torch.equal(val.lengths, raw.train.lengths[4:])
    assert len(val) == 2 and val.question is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("num_classes", "2", r"'num_classes' is '2', not int"),
    ("variable_length", 1, r"'variable_length' is 1, not bool"),
    ("split_sizes", None, r"lacks split_sizes|'split_sizes' is None, not dict"),
])  # fmt: skip
def test_a_meta_json_off_the_contract_is_refused_with_one_line(tmp_path, key, value, message):
    _prepared(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta[key] = value
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ConvrecError, match=message) as refused:
        load_meta(tmp_path)
    assert "\n" not in str(refused.value) and "prepare the task again" in str(refused.value)


def test_a_split_file_with_a_tensor_the_contract_does_not_name_is_refused(tmp_path):
    _prepared(tmp_path)
    torch.save({"x": torch.zeros(2), "y": torch.zeros(2), "extra": torch.zeros(2)},
               tmp_path / "test.pt")  # fmt: skip
    with pytest.raises(ConvrecError, match="does not hold the tensors x and y"):
        load_split(tmp_path, "test")
