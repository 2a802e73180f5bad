"""Task sources, found by name. Each module registers a loader that returns the
official train and test splits; `convrec.data.prepare` does the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.errors import ConvrecError
from convrec.registry import Registry

INPUT_KINDS = ("image", "sequence", "tokens", "video")
TARGET_KINDS = ("class", "steps", "value", "sequence", "tags")
PAD, UNK = "<pad>", "<unk>"  # token ids 0 and 1 of every vocabulary


@dataclass
class RawSplits:
    """The official splits of a task, before validation is carved out of train.

    Inputs: "image" (N, C, H, W) float or uint8; "sequence" (N, C, T) float;
    "tokens" (N, T) int64 ids into `vocab` (0 is padding); "video" (N, C, T, H, W),
    T frames of (C, H, W) images (the layout 3-D convolutions take). Variable-length
    sequences and token lists are right-padded with zeros to the longest one and
    carry their true lengths in `train_lengths` / `test_lengths`.
    Targets: "class" (N,) int64; "steps" (N, T) int64, one label per step;
    "value" (N,) float32, a regression target; "sequence" (N, L) int64, a sequence of
    up to L classes to generate, right-padded with -1 (the digits of a multi-digit image);
    "tags" (N, T) int64, a BIO tag per token, -1 on padding (slot filling).
    An image QA task adds `train_question` / `test_question`: (N, K, Q) int64 ids into
    `vocab`, K questions about each input, and then its "class" targets are (N, K).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_kind: str
    class_names: list[str]  # output classes ("class" and "steps" targets); [] for "value"
    target_kind: str = "class"
    train_lengths: torch.Tensor | None = None  # (N,) int64, only for variable-length inputs
    test_lengths: torch.Tensor | None = None
    vocab: list[str] | None = None  # token ids -> tokens (of the input or the question)
    train_question: torch.Tensor | None = None  # (N, K, Q) int64: K questions about each input
    test_question: torch.Tensor | None = None
    # Image QA: question groups scored apart, {name: token id}; a question holding the token
    # is in the group (Sort-of-CLEVR: "relational" and "nonrelational")
    question_groups: dict[str, int] | None = None
    normalize: bool = True  # per-channel standardisation of float inputs (train statistics)
    image_view: bool = False  # a (N, C, T) sequence that 2-D CNNs should see as (N, 1, C, T)
    baseline: dict | None = None  # a trivial predictor's score: {"value", "what"}
    sources: dict[str, str] = field(default_factory=dict)  # file -> sha256
    generator: dict = field(default_factory=dict)  # settings of a procedural generator


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


def check_validation_split(task: DictConfig) -> None:
    """A task without a validation split (val_size 0) has no score to pick an epoch by."""
    if task.get("val_size") == 0 and task.get("select", "val") != "last":
        raise ConvrecError(
            f"task {task.name}: val_size=0 leaves no validation split to pick the best epoch by; "
            f"set select: last or val_size >= 1 in conf/task/{task.name}.yaml"
        )
