"""Small shared building blocks: activations by name, the configurable conv stack."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
POOLS = {
    "max": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
    "avg": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConvrecError(f"activation {name!r} is unknown; use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class ConvStack(nn.Module):
    """conv -> [batch norm] -> activation -> [pool] -> [dropout], once per entry of `channels`.

    `dims` is 2 for images, 1 for sequences and 3 for videos; every other knob is the same.
    """

    def __init__(
        self,
        in_channels: int,
        dims: int,
        channels: Sequence[int],
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | str = "same",
        dilation: int = 1,
        groups: int = 1,
        pool: str | None = "max",
        pool_size: int = 2,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dims not in (1, 2, 3):
            raise ConvrecError(f"a conv stack works on 1-D, 2-D or 3-D inputs, not {dims}-D")
        if pool is not None and pool not in POOLS:
            raise ConvrecError(f"pool {pool!r} is unknown; use max, avg or null")
        if padding == "same" and stride != 1:
            padding = (dilation * (kernel_size - 1)) // 2  # "same" is refused with stride > 1
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
        norm = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dims - 1]
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers.append(
                conv(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=not batch_norm)
            )  # fmt: skip
            if batch_norm:
                layers.append(norm(out_channels))
            layers.append(make_activation(activation))
            if pool is not None:
                layers.append(POOLS[pool][dims - 1](pool_size))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @torch.no_grad()
    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        was_training = self.training
        self.eval()
        shape = tuple(self(torch.zeros(1, *input_shape)).shape[1:])
        self.train(was_training)
        return shape


def mlp_layers(
    in_features: int, hidden: Sequence[int], act: str, dropout: float
) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), make_activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    return layers
