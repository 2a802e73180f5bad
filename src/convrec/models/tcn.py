"""Temporal convolutional network (Bai, Kolter & Koltun 2018; locuslab/TCN `TemporalConvNet`).

A stack of TemporalBlocks with dilation 2^i: each block is two causal dilated convolutions
(weight-normed, ReLU, dropout) plus a residual connection. Causal means the output at step t
reads only steps <= t, so right-padding is invisible: a per-step target reads every step, a
whole-sequence target reads the last real step (as locuslab reads `y[:, :, -1]`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.io import ChannelInput, OutputHead, last_valid
from convrec.models.spec import Accepts, IOSpec


def causal_conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
    # locuslab draws N(0, 0.01) after wrapping in weight_norm, whose hook recomputes the weight
    # from g and v on every call, so the draw is lost and training starts from PyTorch's default
    # init. We keep that start: drawing before wrapping makes g tiny, and on the adding problem
    # the network then stays at the trivial MSE for 10 epochs (measured).
    return weight_norm(conv)


class TemporalBlock(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        # Padding only on the left is locuslab's "pad both sides, chomp the right" without the
        # wasted steps.
        self.pad = (kernel_size - 1) * dilation
        self.conv1 = causal_conv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = causal_conv(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.downsample = None
        if in_channels != out_channels:  # the residual needs matching channels
            self.downsample = nn.Conv1d(in_channels, out_channels, 1)
            nn.init.normal_(self.downsample.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(F.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        out = self.dropout(F.relu(self.conv2(F.pad(out, (self.pad, 0)))))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


@MODELS.register("tcn")
class TCN(nn.Module):
    family = "cnn"
    accepts = Accepts({"sequence", "tokens"}, {"class", "value", "steps", "tags"},
                      variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32,) * 6,
        kernel_size: int = 7,
        dropout: float = 0.05,
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        if not channels or kernel_size < 1:
            raise ConvrecError(
                f"tcn needs at least one block and kernel_size >= 1, got channels={channels}, "
                f"kernel_size={kernel_size}; fix conf/model/tcn.yaml (net: ...)"
            )
        self.per_step = spec.per_step
        self.kernel_size = kernel_size
        self.input = ChannelInput(spec, embed_dim)
        blocks, width = [], self.input.features
        for level, out_channels in enumerate(channels):
            blocks.append(TemporalBlock(width, out_channels, kernel_size, 2**level, dropout))
            width = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = OutputHead(spec, width)

    @property
    def receptive_field(self) -> int:
        """Steps the last output sees: 1 + 2 (k - 1) (2^levels - 1), two convs per level.

        The defaults (k=7, 6 levels) see 757 steps: all of GunPoint (150), not quite all of
        sequential MNIST (784; 7 levels see 1525).
        """
        return 1 + 2 * (self.kernel_size - 1) * (2 ** len(self.blocks) - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        features = self.blocks(self.input(x)).transpose(1, 2)  # (N, T, F)
        if self.per_step:
            return self.head(features)
        return self.head(last_valid(features, lengths))
