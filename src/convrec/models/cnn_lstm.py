"""CNN + LSTM: a conv stack extracts local features, an LSTM reads the feature map in order.

An image's feature map (N, C, H, W) is read column by column, left to right
(as CRNN reads text lines); a sequence's (N, C, T) map step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.layers import ConvStack
from convrec.models.recurrent import last_state
from convrec.models.spec import IOSpec


def columns_as_sequence(features: torch.Tensor) -> torch.Tensor:
    if features.dim() == 4:
        n, c, h, w = features.shape
        return features.permute(0, 3, 1, 2).reshape(n, w, c * h)
    return features.transpose(1, 2)


@MODELS.register("cnn_lstm")
class CNNLSTM(nn.Module):
    family = "hybrid"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64),
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        **conv,
    ) -> None:
        """`conv` holds the conv blocks' knobs (kernel_size, pool, activation, ...), as
        ConvStack takes them."""
        super().__init__()
        self.features = ConvStack(spec.channels, spec.spatial_dims, list(channels), **conv)
        with torch.no_grad():
            steps = columns_as_sequence(self.features.eval()(spec.example(1)))
        self.features.train()
        self.rnn = nn.LSTM(
            steps.shape[-1], hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(last_state(self.rnn, columns_as_sequence(self.features(x))))
