"""Video models that see one frame at a time (Donahue et al. 2015, LRCN).

A shared 2-D CNN encodes every frame of a (N, C, T, H, W) clip. `frame_cnn` classifies
each frame alone and averages the frames' logits: the single-frame baseline of the LRCN
paper, blind to the order of frames. `lrcn` feeds the frame features to an LSTM, which
reads them in order and classifies from its final state.
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


class FrameEncoder(nn.Module):
    """(N, C, T, H, W) -> (N, T, features): the same conv stack and dense layer on each frame."""

    def __init__(self, spec: IOSpec, channels: Sequence[int], features: int, dropout: float,
                 model: str, **conv) -> None:  # fmt: skip
        super().__init__()
        frame = (spec.input_shape[0], *spec.input_shape[2:])
        self.conv = ConvStack(frame[0], 2, list(channels), **conv)
        flat = math.prod(self.conv.output_shape(frame))
        self.dense = nn.Sequential(nn.Flatten(), *mlp_layers(flat, [features], "relu", dropout))
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        return self.dense(self.conv(frames)).reshape(n, t, self.features)


@MODELS.register("frame_cnn")
class FrameCNN(nn.Module):
    family = "cnn"
    accepts = Accepts({"video"}, {"class", "value"})

    def __init__(self, spec: IOSpec, channels: Sequence[int] = (16, 32, 64), features: int = 128,
                 dropout: float = 0.3, **conv) -> None:  # fmt: skip
        super().__init__()
        self.frames = FrameEncoder(spec, channels, features, dropout, "frame_cnn", **conv)
        self.head = OutputHead(spec, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.frames(x)).mean(1)  # each frame votes; order plays no part


@MODELS.register("lrcn")
class LRCN(nn.Module):
    family = "hybrid"
    accepts = Accepts({"video"}, {"class", "value"})

    def __init__(self, spec: IOSpec, channels: Sequence[int] = (16, 32, 64), features: int = 128,
                 dropout: float = 0.3, hidden_size: int = 128, **conv) -> None:  # fmt: skip
        super().__init__()
        self.frames = FrameEncoder(spec, channels, features, dropout, "lrcn", **conv)
        self.rnn = nn.LSTM(features, hidden_size, batch_first=True)
        self.head = OutputHead(spec, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.rnn(self.frames(x))
        return self.head(h_n[-1])
