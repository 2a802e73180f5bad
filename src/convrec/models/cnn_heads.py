"""A CNN with one classifier head per digit position (Goodfellow et al. 2014, multi-digit SVHN).

The convolutional baseline for reading digit strings: the flattened feature map feeds L
heads, head i predicts the i-th digit or "no more digits". Nothing recurrent: each head
must find its digit from the whole map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.layers import ConvStack, mlp_layers
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("cnn_heads")
class CNNHeads(nn.Module):
    family = "cnn"
    accepts = Accepts({"image"}, {"sequence"})
    decoding = "slots"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64, 128),
        hidden: Sequence[int] = (256,),
        head_dropout: float = 0.3,
        activation: str = "relu",
        **conv,
    ) -> None:
        super().__init__()
        self.slots, self.classes = spec.target_length, spec.num_classes + 1
        self.features = ConvStack(spec.input_shape[0], 2, list(channels), activation=activation,
                                  **conv)  # fmt: skip
        flat = math.prod(self.features.output_shape(spec.input_shape))
        widths = list(hidden)
        self.head = nn.Sequential(
            nn.Flatten(),
            *mlp_layers(flat, widths, activation, head_dropout),
            nn.Linear(widths[-1] if widths else flat, self.slots * self.classes),  # all heads
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, K + 1): per position, a digit or "no more digits" (K)."""
        return self.head(self.features(x)).reshape(len(x), self.slots, self.classes)
