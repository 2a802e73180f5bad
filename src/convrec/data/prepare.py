"""Turn a task's official splits into `data/prepared/<task>/`: tensors plus meta.json.

Validation is carved out of train with a fixed seed; test stays the official
test split. The folder appears complete or not at all.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from convrec.atomic import staged_dir, write_json, write_text
from convrec.data.checksums import digest
from convrec.data.tasks import INPUT_KINDS, TARGET_KINDS, TASKS, RawSplits, check_validation_split
from convrec.errors import ConvrecError

FORMAT_VERSION = 2
SPLITS = ("train", "val", "test")


def prepare_task(
    task: DictConfig, prepared_root: Path, raw_root: Path, profile: str = "quick"
) -> Path:
    """`profile` picks the profile-dependent sizes of a task (`{quick: .., full: ..}` settings)."""
    loader = TASKS.get(task.name)
    settings = OmegaConf.create(OmegaConf.to_container(task, resolve=True))
    settings.profile = profile
    console = Console(stderr=True)
    with console.status(f"[bold]{task.name}[/]: fetching and verifying sources"):
        raw = loader(settings, raw_root)
    _check(raw, task.name)
    check_validation_split(task)
    splits = _split(raw, int(task.val_size), int(task.split_seed))
    out = prepared_root / task.name
    with staged_dir(out) as tmp:
        files = {}
        for name, tensors in splits.items():
            torch.save({k: v.contiguous() for k, v in tensors.items()}, tmp / f"{name}.pt")
            files[f"{name}.pt"] = digest(tmp / f"{name}.pt")
        if raw.vocab is not None:  # one token per line; line i is id i
            write_text(tmp / "vocab.txt", "".join(f"{token}\n" for token in raw.vocab))
            files["vocab.txt"] = digest(tmp / "vocab.txt")
        write_json(tmp / "meta.json", _meta(task, profile, raw, splits, files))
    console.print(
        f"[bold]{task.name}[/]: prepared "
        + ", ".join(f"{n} {len(t['y'])}" for n, t in splits.items())
        + f" -> {out}"
    )
    return out


def _meta(task, profile: str, raw: RawSplits, splits: dict, files: dict) -> dict:
    train = splits["train"]
    float_input = raw.input_kind != "tokens"
    stats = _channel_stats(train["x"], train.get("lengths")) if float_input else None
    question_shape = raw.train_question.shape if raw.train_question is not None else (0, 0, 0)
    return {
        "format_version": FORMAT_VERSION,
        "task": task.name,
        "profile": profile,
        "input_kind": raw.input_kind,
        "input_shape": list(raw.train_x.shape[1:]),
        "target_kind": raw.target_kind,
        "num_classes": len(raw.class_names),
        "class_names": raw.class_names,
        "vocab_size": len(raw.vocab) if raw.vocab is not None else 0,
        "target_length": raw.train_y.shape[1] if raw.target_kind == "sequence" else 0,
        "question_length": question_shape[2],
        "questions_per_input": question_shape[1],
        "question_groups": raw.question_groups or {},
        "variable_length": raw.train_lengths is not None,
        "image_view": raw.image_view,
        "split_sizes": {name: len(t["y"]) for name, t in splits.items()},
        "normalize": {"mean": stats[0], "std": stats[1]} if stats and raw.normalize else None,
        "baseline": raw.baseline,
        "split_seed": int(task.split_seed),
        "sources": raw.sources,
        "generator": raw.generator,
        "files": files,
    }


def _check(raw: RawSplits, name: str) -> None:
    """A loader bug must not reach the prepared data; these are programming errors."""
    assert raw.input_kind in INPUT_KINDS, f"{name}: input_kind {raw.input_kind!r}"
    assert raw.target_kind in TARGET_KINDS, f"{name}: target_kind {raw.target_kind!r}"
    assert (raw.train_lengths is None) == (raw.test_lengths is None), f"{name}: lengths"
    assert (raw.train_question is None) == (raw.test_question is None), f"{name}: questions"
    if raw.train_question is not None:  # (N, K, Q) questions, (N, K) answers
        assert raw.train_question.dim() == 3, f"{name}: questions are (N, K, Q)"
        assert raw.train_y.shape == raw.train_question.shape[:2], f"{name}: an answer each"
    has_tokens = raw.input_kind == "tokens" or raw.train_question is not None
    assert has_tokens == (raw.vocab is not None), f"{name}: vocab"


def _split(raw: RawSplits, val_size: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Carve `val_size` samples out of train; 0 leaves an empty validation split."""
    n = len(raw.train_y)
    if not 0 <= val_size < n:
        raise ConvrecError(
            f"task.val_size={val_size} must be between 0 and {n - 1} (the train split has {n})"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values

    def pick(x, y, lengths, question, index=None) -> dict[str, torch.Tensor]:
        optional = {"lengths": lengths, "question": question}
        tensors = {"x": x, "y": y} | {k: v for k, v in optional.items() if v is not None}
        return {k: v[index] if index is not None else v for k, v in tensors.items()}

    train = (raw.train_x, raw.train_y, raw.train_lengths, raw.train_question)
    return {
        "train": pick(*train, train_idx),
        "val": pick(*train, val_idx),
        "test": pick(raw.test_x, raw.test_y, raw.test_lengths, raw.test_question),
    }


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


# what every reader of meta.json relies on (convrec.models.spec, the datamodule, protocol)
META_KEYS = ("format_version", "task", "input_kind", "input_shape", "num_classes", "split_sizes",
             "files")  # fmt: skip


def load_meta(task_dir: Path) -> dict:
    """The prepared task's meta.json, refused with one line (and how to prepare it again) when
    it is missing, not JSON, or lacks what readers need."""
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
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else META_KEYS
    if missing:
        raise ConvrecError(f"{meta_path} lacks {', '.join(missing)}; {again}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ConvrecError(f"{meta_path} is format {meta['format_version']!r}, this code reads "
                           f"{FORMAT_VERSION}; {again}")  # fmt: skip
    return meta


def load_split(task_dir: Path, split: str, verify_against: dict | None = None):
    """A split's tensors: {"x", "y"}, "lengths" when variable, "question" for image QA. A file
    whose checksum differs from meta.json's, or that holds anything but tensors (torch.load
    with weights_only unpickles nothing else, even when the checksum matches), is refused."""
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
    if not plain or not {"x", "y"} <= set(tensors):
        raise ConvrecError(f"{path} does not hold the tensors x and y; {again}")
    return tensors


def _prepare_again(task_dir: Path) -> str:
    """The fix for a prepared file that cannot be trusted."""
    return f"prepare the task again (`uv run dvc repro prepare@{task_dir.name} --force`)"


def load_vocab(task_dir: Path) -> list[str]:
    return (task_dir / "vocab.txt").read_text().split("\n")[:-1]
