"""CNN + BiLSTM tagger: "same" conv features of each word's neighbourhood, then a BiLSTM
reads them both ways and gives a label per step (the CNN-BiLSTM taggers of sequence
labelling, with the convolutions over words rather than characters).

No pooling, so every step keeps its own features; the conv blocks zero the padding and
the LSTM is packed, so padding never changes a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.cnn_tagger import MaskedConvFeatures
from convrec.models.io import OutputHead
from convrec.models.recurrent import init_recurrent, step_outputs
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("cnn_bilstm")
class CNNBiLSTM(nn.Module):
    family = "hybrid"
    accepts = Accepts({"sequence", "tokens"}, {"steps", "tags"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (64,),
        hidden_size: int = 64,
        embed_dim: int = 64,
        head_dropout: float = 0.0,
        **conv,
    ) -> None:
        super().__init__()
        self.features = MaskedConvFeatures(spec, channels, embed_dim, "cnn_bilstm", **conv)
        self.rnn = nn.LSTM(self.features.out_channels, hidden_size, batch_first=True,
                           bidirectional=True)  # fmt: skip
        init_recurrent(self.rnn, "orthogonal", forget_bias=1.0)  # as the lstm and bilstm models
        self.head = OutputHead(spec, 2 * hidden_size, head_dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        sequence = self.features(x, lengths).transpose(1, 2)  # (N, T, C)
        return self.head(step_outputs(self.rnn, sequence, lengths))
