"""Task sources, found by name. Each module registers a loader that returns the
official train and test splits (convrec.data.contract.RawSplits); `convrec.data.prepare`
does the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convrec.data.contract import RawSplits
from convrec.errors import ConvrecError
from convrec.registry import Registry


def by_profile(value, profile: str):
    """A task setting that depends on the profile ({quick: ..., full: ...}) or not.

    Profiles other than quick and full (tiny) use the quick value.
    """
    if isinstance(value, Mapping) and "quick" in value:
        return value[profile] if profile in value else value["quick"]
    return value


STREAMS = {"train": 0, "test": 1}


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The random stream of a generated task's split: numpy `default_rng([seed, 0])` for train,
    `[seed, 1]` for test, so the test set does not change when the training set grows."""
    return np.random.default_rng([seed, STREAMS[split]])


Loader = Callable[[DictConfig, Path], RawSplits]

TASKS: Registry[Loader] = Registry("task", "convrec.data.tasks", "task")


def loader_for(task: DictConfig) -> Loader:
    """A task's loader: its source kind's for a user's data (`source.kind`, configured in YAML
    only; convrec.data.kinds), else the one registered under the task's name."""
    source = task.get("source")
    if source is not None:
        from convrec.data.kinds import KINDS

        return KINDS.get(str(source.get("kind")))
    return TASKS.get(task.name)


def check_validation_split(task: DictConfig) -> None:
    """A task without a validation split (val_size 0) has no score to pick an epoch by."""
    if task.get("val_size") == 0 and task.get("select", "val") != "last":
        raise ConvrecError(
            f"task {task.name}: val_size=0 leaves no validation split to pick the best epoch by; "
            f"set select: last or val_size >= 1 in conf/task/{task.name}.yaml"
        )
