"""The configurable convolutional network: a conv stack, then a small fully connected head.

2-D convolutions on images and on spectrograms (tasks with `image_view`, whose
padded frames form a fixed-size image), 1-D convolutions on other sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.io import OutputHead
from convrec.models.layers import ConvStack, mlp_layers
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("cnn")
class CNN(nn.Module):
    family = "cnn"
    accepts = Accepts({"image", "sequence", "video"}, {"class", "value"}, variable_length=True)

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
        self.as_image = spec.image_view
        shape = (1, *spec.input_shape) if self.as_image else spec.input_shape
        self.features = ConvStack(shape[0], len(shape) - 1, list(channels),
                                  activation=activation, **conv)  # fmt: skip
        flat = math.prod(self.features.output_shape(shape))
        widths = list(hidden)
        self.head = nn.Sequential(
            nn.Flatten(),
            *mlp_layers(flat, widths, activation, head_dropout),
            OutputHead(spec, widths[-1] if widths else flat),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        # `lengths` is not needed: padding goes to the task's fixed maximum, so a sample's
        # padded input, and so its prediction, is the same in every batch.
        return self.head(self.features(x.unsqueeze(1) if self.as_image else x))
