"""ResNet for time series (Wang, Yan & Oates 2017, as in Fawaz et al. 2019).

Three residual blocks of 64, 128, 128 filters; each block is three convs of widths 8, 5, 3
with batch norm (ReLU after the first two), plus a shortcut (1x1 conv + batch norm when the
channels change, batch norm alone when they match, as in Fawaz's code), ReLU after the sum.
Then masked global average pooling and a linear head. Padded steps are zeroed after every conv
and every sum, so padding never changes a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.fcn import ConvBlock, mask_steps
from convrec.models.io import ChannelInput, OutputHead, masked_mean, step_mask
from convrec.models.spec import Accepts, IOSpec


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernels: Sequence[int]) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * len(kernels)
        last = len(kernels) - 1
        self.convs = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], k, relu=i < last) for i, k in enumerate(kernels)
        )
        shortcut: list[nn.Module] = []
        if in_channels != out_channels:  # the sum needs matching channels
            shortcut.append(nn.Conv1d(in_channels, out_channels, 1, bias=False))
        self.shortcut = nn.Sequential(*shortcut, nn.BatchNorm1d(out_channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = x
        for conv in self.convs:
            out = conv(out, mask)
        return mask_steps(torch.relu(out + self.shortcut(x)), mask)


@MODELS.register("resnet1d")
class ResNet1D(nn.Module):
    family = "cnn"
    accepts = Accepts({"sequence", "tokens"}, {"class", "value"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (64, 128, 128),
        kernels: Sequence[int] = (8, 5, 3),
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        if not channels or not kernels:
            raise ConvrecError(
                f"resnet1d needs at least one block and one conv per block, got "
                f"channels={list(channels)}, kernels={list(kernels)}; fix "
                f"conf/model/resnet1d.yaml (net: ...)"
            )
        self.input = ChannelInput(spec, embed_dim)
        blocks, width = [], self.input.features
        for out_channels in channels:
            blocks.append(ResidualBlock(width, out_channels, kernels))
            width = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head = OutputHead(spec, width)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input(x)
        mask = step_mask(lengths, x.shape[-1], x.device)
        x = mask_steps(x, mask)  # padding may hold anything, and a token's embedding is not zero
        for block in self.blocks:
            x = block(x, mask)
        return self.head(masked_mean(x, mask))
