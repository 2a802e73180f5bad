"""Multi-digit images: 3 to 5 MNIST digits side by side; the target is the digit string (1 -> N).

Each digit is cropped to its inked columns and pasted left to right with a random gap
and a random vertical offset, from a random start, so a digit's position depends on the
widths of the digits before it: reading the string needs alignment, not fixed slots.
Training images use MNIST's training digits, test images its test digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.tasks import TASKS, by_profile
from convrec.data.tasks.mnist import digit_splits, shrink
from convrec.errors import ConvrecError
from convrec.targets import TARGET_PAD

HEIGHT, WIDTH = 32, 144  # room for 5 full-width digits (5 x 28 = 140), before `downscale`


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """The digit cropped to the columns that hold ink (all 28 if it has none)."""
    inked = np.flatnonzero(digit.max(axis=0))
    return digit[:, inked[0] : inked[-1] + 1] if inked.size else digit


def compose(digits: list[np.ndarray], gaps: np.ndarray, start_pick: float, rows: np.ndarray):
    """Paste cropped digits left to right: `gaps` (len - 1) px apart, each at row offset
    `rows[i]`; `start_pick` in [0, 1) places the string in the free width.

    Gaps shrink by halves until the string fits (it always fits with no gaps).
    """
    crops = [ink_columns(d) for d in digits]
    widths = np.array([c.shape[1] for c in crops])
    gaps = gaps.copy()
    while widths.sum() + gaps.sum() > WIDTH:
        gaps //= 2
    free = WIDTH - int(widths.sum() + gaps.sum())
    x = int(start_pick * (free + 1))
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for i, crop in enumerate(crops):
        top = int(rows[i])
        region = canvas[top : top + 28, x : x + crop.shape[1]]
        np.maximum(region, crop, out=region)  # overlapping ink keeps the brighter pixel
        x += crop.shape[1] + (int(gaps[i]) if i < len(gaps) else 0)
    return canvas


def multidigit_samples(
    images, labels, n: int, lengths: tuple[int, int], max_gap: int, rng, factor: int = 1
):
    """n images (n, 1, HEIGHT / factor, WIDTH / factor) uint8 and targets (n, max length),
    padded with TARGET_PAD."""
    shortest, longest = lengths
    x = np.zeros((n, 1, HEIGHT // factor, WIDTH // factor), dtype=np.uint8)
    y = np.full((n, longest), TARGET_PAD, dtype=np.int64)
    for i in range(n):
        count = int(rng.integers(shortest, longest + 1))
        picks = rng.integers(0, len(images), size=count)
        gaps = rng.integers(0, max_gap + 1, size=count - 1)
        rows = rng.integers(0, HEIGHT - 28 + 1, size=count)
        canvas = compose([images[j] for j in picks], gaps, float(rng.random()), rows)
        x[i, 0] = shrink(canvas, factor)
        y[i, :count] = labels[picks]
    return torch.from_numpy(x), torch.from_numpy(y)


@TASKS.register("multidigit")
def multidigit(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train = int(by_profile(cfg.train_size, cfg.profile))
    test = int(by_profile(cfg.test_size, cfg.profile))
    lengths = (int(cfg.min_digits), int(cfg.max_digits))
    factor = int(by_profile(cfg.downscale, cfg.profile))
    if not 1 <= lengths[0] <= lengths[1] <= 5 or train < 2 or test < 1 or factor not in (1, 2, 4):
        raise ConvrecError(
            f"task multidigit: min_digits={lengths[0]}, max_digits={lengths[1]}, "
            f"train_size={train}, test_size={test}, downscale={factor}; need "
            f"1 <= min_digits <= max_digits <= 5 (the canvas holds 5 digits), train_size >= 2, "
            f"test_size >= 1, downscale 1, 2 or 4 "
            f"in conf/task/multidigit.yaml"
        )
    seed, gap = int(cfg.generator_seed), int(cfg.max_gap)

    def make(images, labels, n, rng):
        return multidigit_samples(images, labels, n, lengths, gap, rng, factor)

    splits, sources = digit_splits(raw_dir, seed, (train, test), make)
    return RawSplits(
        train=Split(splits["train"][0], splits["train"][1]),
        test=Split(splits["test"][0], splits["test"][1]),
        input_kind="image",
        class_names=[str(d) for d in range(10)],
        target_kind="sequence",
        sources=sources,
        generator={
            "canvas": [HEIGHT, WIDTH],
            "downscale": factor,
            "digits": list(lengths),
            "max_gap": gap,
            "train_size": train,
            "test_size": test,
            "generator_seed": seed,
            "streams": "numpy default_rng([generator_seed, 0]) train digits, "
            "[generator_seed, 1] test digits",
        },
    )
