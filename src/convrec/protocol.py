"""A task's protocol: what every model of the task trains on, for how long, and is scored on.

Within a task and profile, every model sees the same training examples for the same epochs
and is tested on the same examples, so that a difference between two rows measures the models,
not their budgets. The protocol is everything in the task's config (resolved for the profile)
except what a model may set for itself (`MODEL_KEYS`, in conf/task_model/<task>_<model>.yaml),
plus the trainer's epochs and batch limits; with the prepared data's metadata, the split sizes
the run actually used. Every run records it (metrics.json, MLflow params `protocol.*`), and the
report prints it above the task's table.
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from convrec.data.tasks import by_profile

# Task keys a model may set for itself: its own hyperparameters, not the task's budget.
MODEL_KEYS = ("batch_size",)
# Task keys that describe rather than budget the task.
DESCRIPTIVE_KEYS = ("name", "references")
SPLITS = ("train", "val", "test")


def protocol(cfg: DictConfig, meta: Mapping | None = None) -> dict:
    """The run's protocol as flat, JSON-ready fields. `meta` (the prepared task's meta.json)
    adds the number of examples of each split the run reads, after the task's limits."""
    profile = str(cfg.profile)
    task = OmegaConf.to_container(cfg.task, resolve=True)
    fields: dict = {"profile": profile, "epochs": int(cfg.trainer.max_epochs)}
    for split in SPLITS:  # the tiny profile cuts every split to a few batches
        limit = cfg.trainer.get(f"limit_{split}_batches")
        if limit is not None:
            fields[f"limit_{split}_batches"] = limit
    for key, value in sorted(task.items()):
        if key in MODEL_KEYS or key in DESCRIPTIVE_KEYS or key == "max_epochs":
            continue  # max_epochs: `epochs` above, after the profile picked it
        value = by_profile(value, profile)
        fields[key] = value if not isinstance(value, list | dict) else str(value)
    if meta is not None:
        fields |= {f"{split}_examples": n for split, n in examples(cfg, meta).items()}
    return fields


def split_limits(cfg: DictConfig) -> dict[str, int | None]:
    """Each split's cut for the run's profile: the task's `<split>_limit` (None: the whole
    split). The datamodule cuts by it, and the protocol counts by it."""
    return {split: by_profile(cfg.task.get(f"{split}_limit"), str(cfg.profile))
            for split in SPLITS}  # fmt: skip


def examples(cfg: DictConfig, meta: Mapping) -> dict[str, int]:
    """How many examples of each prepared split a run reads: the split, cut to its limit."""
    sizes = {}
    for split, limit in split_limits(cfg).items():
        size = int(meta["split_sizes"][split])
        sizes[split] = min(size, int(limit)) if limit is not None else size
    return sizes


def describe(fields: Mapping) -> str:
    """One line for a reader: the budget first, then the rest of the task's settings."""
    first = ("profile", "epochs", "train_examples", "val_examples", "test_examples")
    parts = [f"{key} {fields[key]}" for key in first if key in fields]
    parts += [f"{key} {value}" for key, value in fields.items() if key not in first]
    return ", ".join(parts)
