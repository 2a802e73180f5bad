"""The prepared-data contract, defined once.

A task loader returns `RawSplits`: the official train and test `Split`s and what the task is.
`convrec.data.prepare` carves validation out of train and writes `data/prepared/<task>/`
through this module: a `<split>.pt` file of plain tensors per split (`Split.tensors`),
`vocab.txt` for token ids, and `meta.json` (`describe`, every key of `META_KEYS`). The
datamodule, the config check and `IOSpec.from_meta` read it back through `load_meta` and
`load_split`, so a loader (built in or generic) cannot write what readers do not expect, and a
renamed key breaks a test instead of a run.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from convrec.data.checksums import digest
from convrec.errors import ConvrecError

FORMAT_VERSION = 2
SPLITS = ("train", "val", "test")
INPUT_KINDS = ("image", "sequence", "tokens", "video")
TARGET_KINDS = ("class", "steps", "value", "sequence", "tags")
PAD, UNK = "<pad>", "<unk>"  # token ids 0 and 1 of every vocabulary


@dataclass
class Split:
    """One split's tensors. Inputs `x`: "image" (N, C, H, W) float or uint8; "sequence"
    (N, C, T) float; "tokens" (N, T) int64 ids into the vocabulary (0 is padding); "video"
    (N, C, T, H, W), T frames of (C, H, W) images (the layout 3-D convolutions take).
    Variable-length sequences and token lists are right-padded with zeros to the longest one
    and carry their true `lengths` (N,) int64. Targets `y`: "class" (N,) int64; "steps" (N, T)
    int64, one label per step; "value" (N,) float32; "sequence" (N, L) int64, up to L classes
    right-padded with -1; "tags" (N, T) int64, a tag per token, -1 on padding. Image QA adds
    `question` (N, K, Q) int64: K questions about each input, and its "class" targets are
    (N, K)."""

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor | None = None
    question: torch.Tensor | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        """What its `.pt` file holds: x and y, and lengths and question where present."""
        optional = {"lengths": self.lengths, "question": self.question}
        return {"x": self.x, "y": self.y} | {k: v for k, v in optional.items() if v is not None}

    def take(self, index: torch.Tensor | slice) -> Split:
        """The samples at `index`, in every tensor alike."""
        return Split(**{name: tensor[index] for name, tensor in self.tensors().items()})

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class RawSplits:
    """A task's official splits, before validation is carved out of train, and what the task
    is: its kinds of input and target, class names, vocabulary, and where it came from."""

    train: Split
    test: Split
    input_kind: str
    class_names: list[str]  # output classes ("class" and "steps" targets); [] for "value"
    target_kind: str = "class"
    vocab: list[str] | None = None  # token ids -> tokens (of the input or the question)
    # Image QA: question groups scored apart, {name: token id}; a question holding the token
    # is in the group (Sort-of-CLEVR: "relational" and "nonrelational")
    question_groups: dict[str, int] | None = None
    normalize: bool = True  # per-channel standardisation of float inputs (train statistics)
    image_view: bool = False  # a (N, C, T) sequence that 2-D CNNs should see as (N, 1, C, T)
    baseline: dict | None = None  # a trivial predictor's score: {"value", "what"}
    sources: dict[str, str] = field(default_factory=dict)  # file -> sha256
    generator: dict = field(default_factory=dict)  # settings of a procedural generator

    def check(self, name: str) -> None:
        """A loader's bug must not reach the prepared data; these are programming errors."""
        train, test = self.train, self.test
        assert self.input_kind in INPUT_KINDS, f"{name}: input_kind {self.input_kind!r}"
        assert self.target_kind in TARGET_KINDS, f"{name}: target_kind {self.target_kind!r}"
        assert (train.lengths is None) == (test.lengths is None), f"{name}: lengths"
        assert (train.question is None) == (test.question is None), f"{name}: questions"
        for split in (train, test):
            assert len(split.x) == len(split.y), f"{name}: an input per target"
            if split.question is not None:  # (N, K, Q) questions, (N, K) answers
                assert split.question.dim() == 3, f"{name}: questions are (N, K, Q)"
                assert split.y.shape == split.question.shape[:2], f"{name}: an answer each"
        has_tokens = self.input_kind == "tokens" or train.question is not None
        assert has_tokens == (self.vocab is not None), f"{name}: vocab"


# meta.json: key -> the types its value may have. Every key is written, and read back checked.
META_KEYS: dict[str, tuple] = {
    "format_version": (int,), "task": (str,), "profile": (str,), "input_kind": (str,),
    "input_shape": (list,), "target_kind": (str,), "num_classes": (int,),
    "class_names": (list,), "vocab_size": (int,), "target_length": (int,),
    "question_length": (int,), "questions_per_input": (int,), "question_groups": (dict,),
    "variable_length": (bool,), "image_view": (bool,), "split_sizes": (dict,),
    "normalize": (dict, type(None)), "baseline": (dict, type(None)), "split_seed": (int,),
    "sources": (dict,), "generator": (dict,), "files": (dict,),
}  # fmt: skip


def describe(task: str, profile: str, split_seed: int, raw: RawSplits,
             splits: Mapping[str, Split], files: Mapping[str, str]) -> dict:  # fmt: skip
    """meta.json of a prepared task: its kinds and shapes, split sizes, normalisation
    statistics (of the training split), provenance and the checksums of its `files`."""
    train = splits["train"]
    stats = _channel_stats(train.x, train.lengths) if raw.input_kind != "tokens" else None
    question_shape = raw.train.question.shape if raw.train.question is not None else (0, 0, 0)
    meta = {
        "format_version": FORMAT_VERSION,
        "task": task,
        "profile": profile,
        "input_kind": raw.input_kind,
        "input_shape": list(raw.train.x.shape[1:]),
        "target_kind": raw.target_kind,
        "num_classes": len(raw.class_names),
        "class_names": list(raw.class_names),
        "vocab_size": len(raw.vocab) if raw.vocab is not None else 0,
        "target_length": raw.train.y.shape[1] if raw.target_kind == "sequence" else 0,
        "question_length": question_shape[2],
        "questions_per_input": question_shape[1],
        "question_groups": raw.question_groups or {},
        "variable_length": raw.train.lengths is not None,
        "image_view": raw.image_view,
        "split_sizes": {name: len(split) for name, split in splits.items()},
        "normalize": {"mean": stats[0], "std": stats[1]} if stats and raw.normalize else None,
        "baseline": raw.baseline,
        "split_seed": int(split_seed),
        "sources": dict(raw.sources),
        "generator": dict(raw.generator),
        "files": dict(files),
    }
    assert set(meta) == set(META_KEYS), "describe and META_KEYS must agree"
    return meta


def _channel_stats(
    x: torch.Tensor, lengths: torch.Tensor | None
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training inputs, in their stored units; padding excluded."""
    per_channel = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    if lengths is None:
        return per_channel.mean(1).tolist(), per_channel.std(1).tolist()
    real = (torch.arange(x.shape[-1])[None, :] < lengths[:, None]).reshape(-1)
    values = per_channel[:, real]
    return values.mean(1).tolist(), values.std(1).tolist()


def write_split(path: Path, split: Split) -> str:
    """Save a split's tensors (contiguous, so the file holds no more than they do); return the
    file's checksum for meta.json."""
    torch.save({k: v.contiguous() for k, v in split.tensors().items()}, path)
    return digest(path)


def write_vocab(path: Path, vocab: list[str]) -> str:
    """One token per line; line i is id i. Returns the file's checksum."""
    from convrec.atomic import write_text

    write_text(path, "".join(f"{token}\n" for token in vocab))
    return digest(path)


def load_meta(task_dir: Path) -> dict:
    """The prepared task's meta.json, refused with one line (and how to prepare it again) when
    it is missing, not JSON, of another format, or lacks a key or has one of the wrong type."""
    meta_path = task_dir / "meta.json"
    if not meta_path.is_file():
        raise ConvrecError(
            f"{task_dir} holds no prepared data; run `uv run dvc repro prepare@{task_dir.name}` "
            f"(or `uv run python pipelines/prepare.py task={task_dir.name}`) first"
        )
    again = _prepare_again(task_dir)
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConvrecError(f"{meta_path} is not valid JSON ({err}); {again}") from None
    if not isinstance(meta, dict):
        raise ConvrecError(f"{meta_path} is not a JSON object; {again}")
    if meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ConvrecError(f"{meta_path} is format {meta['format_version']!r}, this code reads "
                           f"{FORMAT_VERSION}; {again}")  # fmt: skip
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise ConvrecError(f"{meta_path} lacks {', '.join(missing)}; {again}")
    for key, types in META_KEYS.items():
        value = meta[key]
        # a bool is an int to isinstance: only where the contract says bool
        if not isinstance(value, types) or isinstance(value, bool) != (bool in types):
            allowed = " or ".join(t.__name__ for t in types)
            raise ConvrecError(f"{meta_path}: {key!r} is {value!r}, not {allowed}; {again}")
    return meta


def load_split(task_dir: Path, split: str, verify_against: dict | None = None) -> Split:
    """A split's tensors. A file whose checksum differs from meta.json's, or that holds
    anything but tensors (torch.load with weights_only unpickles nothing else, even when the
    checksum matches), is refused."""
    path = task_dir / f"{split}.pt"
    again = _prepare_again(task_dir)
    if verify_against is not None:
        expected = verify_against["files"].get(f"{split}.pt")
        if not path.is_file():
            raise ConvrecError(f"{path} is missing; {again}")
        if digest(path) != expected:
            raise ConvrecError(f"{path} does not match the checksum in meta.json; {again}")
    try:
        tensors = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConvrecError(f"{path} is not a file of plain tensors ({reason}); {again}") from None
    plain = isinstance(tensors, dict) and all(torch.is_tensor(v) for v in tensors.values())
    if not plain or not {"x", "y"} <= set(tensors) or set(tensors) - set(Split.__annotations__):
        names = ", ".join(Split.__annotations__)
        raise ConvrecError(f"{path} does not hold the tensors x and y (and only {names}); "
                           f"{again}")  # fmt: skip
    return Split(**tensors)


def _prepare_again(task_dir: Path) -> str:
    """The fix for a prepared file that cannot be trusted."""
    return f"prepare the task again (`uv run dvc repro prepare@{task_dir.name} --force`)"
