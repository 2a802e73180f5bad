"""Turn a task's official splits into `data/prepared/<task>/`: tensors plus meta.json.

Validation is carved out of train with a fixed seed; test stays the official
test split. The folder appears complete or not at all; what it holds is convrec.data.contract's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console

from convrec.atomic import staged_dir, write_json
from convrec.data.contract import RawSplits, Split, describe, write_split, write_vocab
from convrec.data.tasks import check_validation_split, loader_for
from convrec.errors import ConvrecError


def prepare_task(
    task: DictConfig, prepared_root: Path, raw_root: Path, profile: str = "quick"
) -> Path:
    """`profile` picks the profile-dependent sizes of a task (`{quick: .., full: ..}` settings)."""
    loader = loader_for(task)
    try:
        resolved = OmegaConf.to_container(task, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:  # a user's YAML that leaves a `???` key unset
        key = getattr(err, "full_key", "") or "a key"
        raise ConvrecError(f"task {task.name}: {key} is not set; set it in "
                           f"conf/task/{task.name}.yaml") from None  # fmt: skip
    settings = OmegaConf.create(resolved)
    settings.profile = profile
    console = Console(stderr=True)
    with console.status(f"[bold]{task.name}[/]: fetching and verifying sources"):
        raw = loader(settings, raw_root)
    raw.check(task.name)
    check_validation_split(task)
    splits = _split(raw, validation_size(task.val_size, len(raw.train)), int(task.split_seed))
    out = prepared_root / task.name
    with staged_dir(out) as tmp:
        files = {f"{name}.pt": write_split(tmp / f"{name}.pt", split)
                 for name, split in splits.items()}  # fmt: skip
        if raw.vocab is not None:
            files["vocab.txt"] = write_vocab(tmp / "vocab.txt", raw.vocab)
        meta = describe(task.name, profile, int(task.split_seed), raw, splits, files)
        write_json(tmp / "meta.json", meta)
    console.print(
        f"[bold]{task.name}[/]: prepared "
        + ", ".join(f"{n} {len(split)}" for n, split in splits.items())
        + f" -> {out}"
    )
    return out


def validation_size(val_size: int | float, n: int) -> int:
    """`val_size` samples, or a fraction of the train split's `n` (a user's data, whose size
    the task's YAML does not know: 0.1 is a tenth)."""
    if isinstance(val_size, float) and 0 < val_size < 1:
        return max(1, round(n * val_size))
    return int(val_size)


def _split(raw: RawSplits, val_size: int, seed: int) -> dict[str, Split]:
    """Carve `val_size` samples out of train; 0 leaves an empty validation split."""
    n = len(raw.train)
    if not 0 <= val_size < n:
        raise ConvrecError(
            f"task.val_size={val_size} must be between 0 and {n - 1} (the train split has {n})"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    return {"train": raw.train.take(train_idx), "val": raw.train.take(val_idx), "test": raw.test}
