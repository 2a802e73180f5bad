"""The configurable convolutional network: a conv stack, then a small classifier head.

2-D convolutions on images, 1-D convolutions on sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.layers import ConvStack, mlp_layers
from convrec.models.spec import IOSpec


@MODELS.register("cnn")
class CNN(nn.Module):
    family = "cnn"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64),
        activation: str = "relu",
        hidden: Sequence[int] = (128,),
        head_dropout: float = 0.3,
        **conv,
    ) -> None:
        """`conv` holds the conv blocks' knobs (kernel_size, stride, padding, dilation,
        groups, pool, pool_size, batch_norm, dropout), as ConvStack takes them."""
        super().__init__()
        self.features = ConvStack(
            spec.channels, spec.spatial_dims, list(channels), activation=activation, **conv
        )
        flat = math.prod(self.features.output_shape(spec.input_shape))
        widths = list(hidden)
        self.head = nn.Sequential(
            nn.Flatten(),
            *mlp_layers(flat, widths, activation, head_dropout),
            nn.Linear(widths[-1] if widths else flat, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
