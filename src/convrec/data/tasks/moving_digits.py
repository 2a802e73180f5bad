"""Moving digits: short clips of one MNIST digit moving in a straight line and bouncing off
the frame's edges (after Srivastava et al. 2015's Moving MNIST); the label is the digit and
its direction at the start of the clip (10 digits x 4 directions).

The direction needs time: the start position is uniform, so any single frame, or the
average over frames, is as likely under every direction; only the order of the frames
tells them apart. A clip starts with a step in its labelled direction (no bounce on the
first step), so the label is always visible in the first two frames.
Training clips use MNIST's training digits, test clips its test digits.
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

DIRECTIONS = ("right", "left", "down", "up")
# (axis of motion in (row, column), sign): down/up move along rows, right/left along columns
MOTION = {"right": (1, 1), "left": (1, -1), "down": (0, 1), "up": (0, -1)}
DIGIT = 28


def bounce(start: int, velocity: int, frames: int, limit: int) -> list[int]:
    """Positions in [0, limit] of a point moving at `velocity` px/frame, reflected at the ends."""
    positions, position = [], start
    for _ in range(frames):
        positions.append(position)
        position += velocity
        if position < 0 or position > limit:
            velocity = -velocity
            position = -position if position < 0 else 2 * limit - position
    return positions


def clip(digit: np.ndarray, direction: str, speed: int, start: tuple[int, int], frames: int,
         size: int) -> np.ndarray:  # fmt: skip
    """(1, frames, size, size) uint8: the digit's top-left corner starts at `start` (row, col)."""
    axis, sign = MOTION[direction]
    moving = bounce(start[axis], sign * speed, frames, size - DIGIT)
    video = np.zeros((1, frames, size, size), dtype=np.uint8)
    for t, position in enumerate(moving):
        corner = list(start)
        corner[axis] = position
        video[0, t, corner[0] : corner[0] + DIGIT, corner[1] : corner[1] + DIGIT] = digit
    return video


def moving_samples(images, labels, n: int, frames: int, size: int, speeds, rng, factor: int = 1):
    """n clips (n, 1, frames, size / factor, size / factor) uint8; y = digit * 4 + direction."""
    limit = size - DIGIT
    x = np.zeros((n, 1, frames, size // factor, size // factor), dtype=np.uint8)
    y = np.zeros(n, dtype=np.int64)
    for i in range(n):
        pick = int(rng.integers(len(images)))
        direction = int(rng.integers(len(DIRECTIONS)))
        speed = int(rng.integers(speeds[0], speeds[1] + 1))
        axis, sign = MOTION[DIRECTIONS[direction]]
        start = [int(rng.integers(0, limit + 1))] * 2
        # The moving coordinate leaves room for one step in the labelled direction.
        low, high = (speed, limit) if sign < 0 else (0, limit - speed)
        start[axis] = int(rng.integers(low, high + 1))
        video = clip(images[pick], DIRECTIONS[direction], speed, tuple(start), frames, size)
        x[i] = shrink(video, factor)
        y[i] = labels[pick] * len(DIRECTIONS) + direction
    return torch.from_numpy(x), torch.from_numpy(y)


@TASKS.register("moving_digits")
def moving_digits(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train = int(by_profile(cfg.train_size, cfg.profile))
    test = int(by_profile(cfg.test_size, cfg.profile))
    frames, size = int(cfg.frames), int(cfg.frame_size)
    speeds = (int(cfg.min_speed), int(cfg.max_speed))
    factor = int(by_profile(cfg.downscale, cfg.profile))
    fast = not 1 <= speeds[0] <= speeds[1] <= size - DIGIT
    if frames < 2 or fast or train < 2 or test < 1 or size % factor:
        raise ConvrecError(
            f"task moving_digits: frames={frames}, frame_size={size}, speeds={speeds}, "
            f"train_size={train}, test_size={test}, downscale={factor}; need frames >= 2, "
            f"1 <= min_speed <= max_speed <= frame_size - 28, train_size >= 2, test_size >= 1, "
            f"frame_size divisible by downscale "
            f"in conf/task/moving_digits.yaml"
        )
    seed = int(cfg.generator_seed)

    def make(images, labels, n, rng):
        return moving_samples(images, labels, n, frames, size, speeds, rng, factor)

    splits, sources = digit_splits(raw_dir, seed, (train, test), make)
    return RawSplits(
        train=Split(splits["train"][0], splits["train"][1]),
        test=Split(splits["test"][0], splits["test"][1]),
        input_kind="video",
        class_names=[f"{d} {direction}" for d in range(10) for direction in DIRECTIONS],
        sources=sources,
        generator={
            "frames": frames,
            "frame_size": size,
            "downscale": factor,
            "speeds": list(speeds),
            "train_size": train,
            "test_size": test,
            "generator_seed": seed,
            "streams": "numpy default_rng([generator_seed, 0]) train digits, "
            "[generator_seed, 1] test digits",
        },
    )
