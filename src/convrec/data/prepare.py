"""Turn a task's official splits into `data/prepared/<task>/`: tensors plus meta.json.

Validation is carved out of train with a fixed seed; test stays the official
test split. The folder appears complete or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig
from rich.console import Console

from convrec.atomic import staged_dir, write_json
from convrec.data.checksums import digest
from convrec.data.tasks import TASKS, RawSplits
from convrec.errors import ConvrecError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


def prepare_task(task: DictConfig, prepared_root: Path, raw_root: Path) -> Path:
    loader = TASKS.get(task.name)
    console = Console(stderr=True)
    with console.status(f"[bold]{task.name}[/]: fetching and verifying sources"):
        raw = loader(task, raw_root)
    splits = _split(raw, int(task.val_size), int(task.split_seed))
    mean, std = _channel_stats(splits["train"][0])
    out = prepared_root / task.name
    with staged_dir(out) as tmp:
        files = {}
        for name, (x, y) in splits.items():
            torch.save({"x": x.contiguous(), "y": y.contiguous()}, tmp / f"{name}.pt")
            files[f"{name}.pt"] = digest(tmp / f"{name}.pt")
        write_json(
            tmp / "meta.json",
            {
                "format_version": FORMAT_VERSION,
                "task": task.name,
                "input_kind": raw.input_kind,
                "input_shape": list(raw.train_x.shape[1:]),
                "num_classes": len(raw.class_names),
                "class_names": raw.class_names,
                "split_sizes": {name: len(y) for name, (_, y) in splits.items()},
                "normalize": {"mean": mean, "std": std},
                "split_seed": int(task.split_seed),
                "sources": raw.sources,
                "generator": raw.generator,
                "files": files,
            },
        )
    console.print(
        f"[bold]{task.name}[/]: prepared "
        + ", ".join(f"{n} {len(y)}" for n, (_, y) in splits.items())
        + f" -> {out}"
    )
    return out


def _split(
    raw: RawSplits, val_size: int, seed: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    n = len(raw.train_y)
    if not 0 < val_size < n:
        raise ConvrecError(
            f"task.val_size={val_size} must be between 1 and {n - 1} (the train split has {n})"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    return {
        "train": (raw.train_x[train_idx], raw.train_y[train_idx]),
        "val": (raw.train_x[val_idx], raw.train_y[val_idx]),
        "test": (raw.test_x, raw.test_y),
    }


def _channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training inputs, in their stored units."""
    per_channel = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    return per_channel.mean(1).tolist(), per_channel.std(1).tolist()


def load_meta(task_dir: Path) -> dict:
    meta_path = task_dir / "meta.json"
    if not meta_path.is_file():
        raise ConvrecError(
            f"{task_dir} holds no prepared data; run `uv run dvc repro prepare@{task_dir.name}` "
            f"(or `uv run python pipelines/prepare.py task={task_dir.name}`) first"
        )
    return json.loads(meta_path.read_text())


def load_split(task_dir: Path, split: str, verify_against: dict | None = None):
    path = task_dir / f"{split}.pt"
    if verify_against is not None and digest(path) != verify_against["files"][f"{split}.pt"]:
        raise ConvrecError(
            f"{path} does not match the checksum in meta.json; prepare the task again "
            f"(`uv run dvc repro prepare@{task_dir.name} --force`)"
        )
    data = torch.load(path, weights_only=True)
    return data["x"], data["y"]
