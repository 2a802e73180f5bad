"""Recurrent classifiers: an LSTM or GRU reads the input as a sequence, the last state decides.

Images are read row by row (a 28x28 digit is 28 steps of 28 pixels).
"""

from __future__ import annotations

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import IOSpec, as_sequence


def last_state(rnn: nn.RNNBase, sequence: torch.Tensor) -> torch.Tensor:
    """The top layer's final hidden state; both directions concatenated when bidirectional."""
    _, state = rnn(sequence)
    h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
    if rnn.bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=1)
    return h_n[-1]


class RecurrentClassifier(nn.Module):
    family = "rnn"
    cell: type[nn.RNNBase]

    def __init__(
        self,
        spec: IOSpec,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        features = as_sequence(spec.example()).shape[-1]
        self.rnn = self.cell(
            features, hidden_size, num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(last_state(self.rnn, as_sequence(x)))


@MODELS.register("lstm")
class LSTMClassifier(RecurrentClassifier):
    cell = nn.LSTM


@MODELS.register("gru")
class GRUClassifier(RecurrentClassifier):
    cell = nn.GRU
