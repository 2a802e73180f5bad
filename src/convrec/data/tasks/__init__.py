"""Task sources, found by name. Each module registers a loader that returns the
official train and test splits; `convrec.data.prepare` does the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

from convrec.registry import Registry


@dataclass
class RawSplits:
    """The official splits of a task, before validation is carved out of train."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_kind: str  # "image" (N, C, H, W) or "sequence" (N, C, T)
    class_names: list[str]
    sources: dict[str, str] = field(default_factory=dict)  # file -> sha256
    generator: dict = field(default_factory=dict)  # settings of a procedural generator


Loader = Callable[[DictConfig, Path], RawSplits]

TASKS: Registry[Loader] = Registry("task", "convrec.data.tasks", "task")
