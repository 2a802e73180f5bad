"""The fully connected baseline: flatten the input, stack Linear layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.io import OutputHead
from convrec.models.layers import mlp_layers
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("mlp")
class MLP(nn.Module):
    family = "mlp"
    accepts = Accepts({"image", "sequence", "video"}, {"class", "value"})

    def __init__(
        self,
        spec: IOSpec,
        hidden: Sequence[int] = (512, 256),
        activation: str = "relu",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        in_features = math.prod(spec.input_shape)
        widths = list(hidden)
        self.net = nn.Sequential(
            nn.Flatten(),
            *mlp_layers(in_features, widths, activation, dropout),
            OutputHead(spec, widths[-1] if widths else in_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
