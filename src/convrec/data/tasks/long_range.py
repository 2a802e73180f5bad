"""The long-range stress tests of Bai, Kolter & Koltun 2018 (code: locuslab/TCN).

Sequential MNIST and permuted MNIST read an image pixel by pixel (784 steps).
The adding problem and the copy-memory task are procedural; each split comes
from its own random stream, numpy `default_rng([generator_seed, split])`, so the
test set does not change when the training set grows.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.tasks import TASKS, by_profile, split_rng
from convrec.data.tasks.mnist import idx_arrays
from convrec.errors import ConvrecError

PIXELS = 28 * 28
DIGITS = 8  # copy memory draws its symbols from 1..8
BLANK, DELIMITER = 0, 9


def _pixel_splits(raw_dir: Path, order: torch.Tensor | None, generator: dict) -> RawSplits:
    arrays, sources = idx_arrays(raw_dir)

    def pixels(key: str) -> torch.Tensor:
        # Stored as uint8 (4x smaller than float); the datamodule standardises on load.
        x = torch.from_numpy(arrays[key].reshape(-1, 1, PIXELS).copy())
        return x if order is None else x[:, :, order]  # (N, 1, 784) uint8

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    return RawSplits(
        train=Split(pixels("train-images"), labels("train-labels")),
        test=Split(pixels("t10k-images"), labels("t10k-labels")),
        input_kind="sequence",
        class_names=[str(d) for d in range(10)],
        sources=sources,
        generator=generator,
    )


def pixel_permutation(seed: int) -> torch.Tensor:
    """The fixed order in which permuted MNIST reads the 784 pixels."""
    return torch.randperm(PIXELS, generator=torch.Generator().manual_seed(seed))


@TASKS.register("seq_mnist")
def seq_mnist(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    return _pixel_splits(raw_dir, None, {})


@TASKS.register("pmnist")
def pmnist(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    seed = int(cfg.permutation_seed)
    order = pixel_permutation(seed)
    generator = {
        "permutation_seed": seed,
        "permutation": f"torch.randperm({PIXELS}, generator=torch.Generator().manual_seed(seed))",
        "permutation_sha256": hashlib.sha256(order.numpy().astype("<i8").tobytes()).hexdigest(),
    }
    return _pixel_splits(raw_dir, order, generator)


def _sizes(cfg: DictConfig) -> tuple[int, int, int]:
    seq_len = int(by_profile(cfg.seq_len, cfg.profile))
    train = int(by_profile(cfg.train_size, cfg.profile))
    test = int(by_profile(cfg.test_size, cfg.profile))
    if seq_len < 2 or train < 2 or test < 1:
        raise ConvrecError(
            f"task {cfg.name}: seq_len={seq_len}, train_size={train}, test_size={test} are too "
            f"small; set seq_len >= 2, train_size >= 2 and test_size >= 1 "
            f"in conf/task/{cfg.name}.yaml"
        )
    return seq_len, train, test


def adding_samples(n: int, seq_len: int, rng: np.random.Generator):
    """x (n, 2, T): uniform values and a marker channel with one 1 in each half; y: their sum.

    One marker per half follows Le et al. 2015 and Arjovsky et al. 2016;
    locuslab/TCN draws the two positions anywhere (without replacement). Either
    way, predicting 1 scores the variance of a sum of two U(0,1): 1/6.
    """
    # One row of draws per sequence, so a longer run of the stream only appends sequences.
    draws = rng.random((n, seq_len + 2), dtype=np.float32)
    values, picks = draws[:, :seq_len], draws[:, seq_len:].astype(np.float64)
    half = seq_len // 2
    first = np.floor(picks[:, 0] * half).astype(np.int64)
    second = half + np.floor(picks[:, 1] * (seq_len - half)).astype(np.int64)
    rows = np.arange(n)
    markers = np.zeros((n, seq_len), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=1)
    y = values[rows, first] + values[rows, second]
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))


@TASKS.register("adding")
def adding(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    seq_len, train, test = _sizes(cfg)
    seed = int(cfg.generator_seed)
    train_x, train_y = adding_samples(train, seq_len, split_rng(seed, "train"))
    test_x, test_y = adding_samples(test, seq_len, split_rng(seed, "test"))
    return RawSplits(
        train=Split(train_x, train_y),
        test=Split(test_x, test_y),
        input_kind="sequence",
        class_names=[],
        target_kind="value",
        normalize=False,  # the marker channel must stay exactly 0/1
        baseline={"value": 1 / 6, "what": "predict 1 for every sequence (variance of the sum)"},
        generator={
            "seq_len": seq_len,
            "train_size": train,
            "test_size": test,
            "generator_seed": seed,
            "markers": "one in each half",
            "streams": "numpy default_rng([generator_seed, 0]) train, [generator_seed, 1] test",
        },
    )


def copy_memory_samples(n: int, blank_len: int, memory: int, rng: np.random.Generator):
    """As locuslab/TCN copy_memory/utils.py: `memory` digits from 1..8, blank_len - 1 blanks,
    then memory + 1 nines (the first one is the delimiter). The target is blanks until
    the last `memory` steps, which repeat the digits. Both are (n, blank_len + 2 * memory).
    """
    digits = rng.integers(1, DIGITS + 1, size=(n, memory), dtype=np.int64)
    x = np.concatenate(
        [
            digits,
            np.full((n, blank_len - 1), BLANK, dtype=np.int64),
            np.full((n, memory + 1), DELIMITER, dtype=np.int64),
        ],
        axis=1,
    )
    y = np.concatenate([np.full((n, blank_len + memory), BLANK, dtype=np.int64), digits], axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


def copy_memory_baseline(blank_len: int, memory: int) -> float:
    """Per-step cross-entropy of predicting blanks, then uniform over 1..8 for the recall."""
    return memory * math.log(DIGITS) / (blank_len + 2 * memory)


@TASKS.register("copy_memory")
def copy_memory(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    blank_len, train, test = _sizes(cfg)
    memory = int(cfg.memory_length)
    seed = int(cfg.generator_seed)
    train_x, train_y = copy_memory_samples(train, blank_len, memory, split_rng(seed, "train"))
    test_x, test_y = copy_memory_samples(test, blank_len, memory, split_rng(seed, "test"))
    return RawSplits(
        train=Split(train_x, train_y),
        test=Split(test_x, test_y),
        input_kind="tokens",
        # Target classes 0..9 (9 never appears in targets, but models emit all 10 symbols).
        class_names=["blank", *(str(d) for d in range(1, DIGITS + 1)), "delimiter"],
        target_kind="steps",
        # The ids ARE the symbols: no <pad>/<unk> here (sequences are fixed-length, and
        # every symbol is known), so id 0 is the blank, not padding.
        vocab=[str(d) for d in range(10)],
        normalize=False,
        baseline={
            "value": copy_memory_baseline(blank_len, memory),
            "what": "predict blanks, then uniform over 1-8 for the last "
            f"{memory} steps (per-step cross-entropy)",
        },
        generator={
            "seq_len": blank_len,
            "memory_length": memory,
            "train_size": train,
            "test_size": test,
            "generator_seed": seed,
            "streams": "numpy default_rng([generator_seed, 0]) train, [generator_seed, 1] test",
        },
    )
