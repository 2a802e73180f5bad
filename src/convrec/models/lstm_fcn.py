"""LSTM-FCN (Karim, Majumdar, Darabi & Chen 2017): an FCN branch and an LSTM branch side by side.

The FCN branch is fcn.py's conv blocks and average pool; the LSTM branch (8 cells, dropout 0.8
on its output) reads the same input; both feature vectors are concatenated for a linear head.

Karim's "dimension shuffle" has the LSTM read the C channels as C steps of T features (a
univariate series is one step), which the paper found better and much faster. It needs every
series to have the same T, and padding would become part of every step's features, so on
variable-length tasks the LSTM reads the T time steps instead, packed
(`pack_padded_sequence`) so it stops at each sequence's last real step and padding stays
invisible. Token ids are embedded first (the embedding dims then play the channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from convrec.models import MODELS
from convrec.models.fcn import FCNBody, check_blocks, mask_steps
from convrec.models.io import ChannelInput, OutputHead, step_mask
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("lstm_fcn")
class LSTMFCN(nn.Module):
    family = "hybrid"
    accepts = Accepts({"sequence", "tokens"}, {"class", "value"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (128, 256, 128),
        kernels: Sequence[int] = (8, 5, 3),
        hidden_size: int = 8,
        lstm_dropout: float = 0.8,
        dimension_shuffle: bool = True,
        embed_dim: int = 64,
    ) -> None:
        super().__init__()
        check_blocks("lstm_fcn", channels, kernels)
        self.input = ChannelInput(spec, embed_dim)
        self.fcn = FCNBody(self.input.features, channels, kernels)
        self.shuffle = dimension_shuffle and not spec.variable_length
        self.lstm = nn.LSTM(
            spec.steps if self.shuffle else self.input.features, hidden_size, batch_first=True
        )
        self.lstm_dropout = nn.Dropout(lstm_dropout)
        self.head = OutputHead(spec, hidden_size + self.fcn.out_features)

    def read(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The LSTM's final hidden state over (N, F, T) features."""
        if self.shuffle:
            sequence = x  # C steps of T features
        elif lengths is None:
            sequence = x.transpose(1, 2)
        else:
            sequence = pack_padded_sequence(
                x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False
            )
        _, (h_n, _) = self.lstm(sequence)  # h_n comes back in the batch's order
        return h_n[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input(x)
        mask = step_mask(lengths, x.shape[-1], x.device)
        x = mask_steps(x, mask)  # padding may hold anything, and a token's embedding is not zero
        features = torch.cat([self.lstm_dropout(self.read(x, lengths)), self.fcn(x, mask)], dim=1)
        return self.head(features)
