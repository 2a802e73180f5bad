"""What a model needs to know about a task: input layout and number of classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class IOSpec:
    input_kind: str  # "image": (N, C, H, W); "sequence": (N, C, T)
    input_shape: tuple[int, ...]  # without the batch dimension
    num_classes: int

    @classmethod
    def from_meta(cls, meta: dict) -> IOSpec:
        return cls(meta["input_kind"], tuple(meta["input_shape"]), int(meta["num_classes"]))

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def spatial_dims(self) -> int:
        return len(self.input_shape) - 1

    def example(self, batch: int = 2) -> torch.Tensor:
        return torch.zeros(batch, *self.input_shape)


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """Lay an input out as (N, steps, features) for a recurrent layer.

    An image is read row by row (each row's pixels of every channel are one
    step); a (N, C, T) sequence becomes T steps of C features.
    """
    if x.dim() == 4:
        n, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
    if x.dim() == 3:
        return x.transpose(1, 2)
    raise ValueError(f"expected (N, C, H, W) or (N, C, T), got shape {tuple(x.shape)}")
