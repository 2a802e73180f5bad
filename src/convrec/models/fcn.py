"""Fully convolutional network for time series (Wang, Yan & Oates 2017, as in Fawaz et al. 2019).

Three conv blocks (128 filters of width 8, 256 of width 5, 128 of width 3; 'same' padding,
batch norm, ReLU), global average pooling over time, a linear head. No pooling between blocks,
so it works on any length. Padded steps are zeroed after every block, so a padded sequence
looks to each conv exactly like the unpadded one with its zero 'same' padding, and the average
excludes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.io import ChannelInput, OutputHead, masked_mean, step_mask
from convrec.models.spec import Accepts, IOSpec


def mask_steps(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded steps of (N, F, T) features (bias and batch norm make them non-zero)."""
    return x if mask is None else x * mask


def check_blocks(model: str, channels: Sequence[int], kernels: Sequence[int]) -> None:
    if not channels or len(channels) != len(kernels):
        raise ConvrecError(
            f"{model} needs one kernel size per conv block, got channels={list(channels)} and "
            f"kernels={list(kernels)}; give both lists the same length in "
            f"conf/model/{model}.yaml (net: ...)"
        )


class ConvBlock(nn.Module):
    """conv ('same' padding) -> batch norm -> [ReLU], then padded steps are zeroed again."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, relu: bool = True):
        super().__init__()
        # 'same' padding written out (PyTorch's puts the odd step on the right too), which spares
        # the warning PyTorch gives for padding="same" with even kernels. No conv bias: batch
        # norm's shift replaces it.
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, bias=False)
        self.norm = nn.BatchNorm1d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = self.norm(self.conv(F.pad(x, self.pad)))
        return mask_steps(torch.relu(out) if self.relu else out, mask)


class FCNBody(nn.Module):
    """The conv blocks and the masked global average pool: (N, C, T) -> (N, channels[-1])."""

    def __init__(self, in_channels: int, channels: Sequence[int], kernels: Sequence[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for out_channels, kernel_size in zip(channels, kernels, strict=True):
            self.blocks.append(ConvBlock(in_channels, out_channels, kernel_size))
            in_channels = out_channels
        self.out_features = in_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return masked_mean(x, mask)


@MODELS.register("fcn")
class FCN(nn.Module):
    family = "cnn"
    accepts = Accepts({"sequence", "tokens"}, {"class", "value"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (128, 256, 128),
        kernels: Sequence[int] = (8, 5, 3),
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        check_blocks("fcn", channels, kernels)
        self.input = ChannelInput(spec, embed_dim)
        self.body = FCNBody(self.input.features, channels, kernels)
        self.head = OutputHead(spec, self.body.out_features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input(x)
        mask = step_mask(lengths, x.shape[-1], x.device)
        # The input too: padding may hold anything, and a token's embedding is not zero.
        return self.head(self.body(mask_steps(x, mask), mask))
