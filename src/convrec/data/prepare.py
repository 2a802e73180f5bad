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
    # a user's classes are stratified (their sizes are unknown: a rare class must validate too);
    # the built-in tasks keep the plain seeded split their published protocols were run with
    stratify = "source" in task and raw.train.y.dim() == 1 and not raw.train.y.is_floating_point()
    splits = _split(raw, validation_size(task.val_size, len(raw.train)), int(task.split_seed),
                    stratify)  # fmt: skip
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


def stratified_sample(y: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """`size` indices of `y` drawn from each class in proportion to its count (largest
    remainders get the rest), never a class's last example; seeded by `generator`."""
    classes, counts = torch.unique(y, return_counts=True)
    shares = counts.double() * size / len(y)
    quota = shares.floor().long()
    for i in torch.argsort(shares - quota, descending=True, stable=True)[: size - int(quota.sum())]:
        quota[i] += 1
    quota = torch.minimum(quota, counts - 1)
    picked = []
    for label, take in zip(classes.tolist(), quota.tolist(), strict=True):
        members = (y == label).nonzero().flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:take]])
    return torch.cat(picked)


def validation_size(val_size: int | float, n: int) -> int:
    """`val_size` samples, or a fraction of the train split's `n` (a user's data, whose size
    the task's YAML does not know: 0.1 is a tenth)."""
    if isinstance(val_size, float) and 0 < val_size < 1:
        return max(1, round(n * val_size))
    return int(val_size)


def _split(raw: RawSplits, val_size: int, seed: int, stratify: bool = False) -> dict[str, Split]:
    """Carve `val_size` samples out of train (with `stratify`, each class in proportion); 0
    leaves an empty validation split."""
    n = len(raw.train)
    if not 0 <= val_size < n:
        raise ConvrecError(
            f"task.val_size={val_size} must be between 0 and {n - 1} (the train split has {n})"
        )
    generator = torch.Generator().manual_seed(seed)
    if stratify:
        val_idx = stratified_sample(raw.train.y, val_size, generator)
    else:
        val_idx = torch.randperm(n, generator=generator)[:val_size]
    held = torch.zeros(n, dtype=torch.bool)
    held[val_idx] = True
    val_idx, train_idx = held.nonzero().flatten(), (~held).nonzero().flatten()
    return {"train": raw.train.take(train_idx), "val": raw.train.take(val_idx), "test": raw.test}
