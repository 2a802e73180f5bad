"""CNN encoder + LSTM decoder, the image captioning design (Vinyals et al. 2015, Show and Tell).

The CNN's flattened feature map sets the decoder's initial state; the LSTM then writes
the digits one at a time, each step reading the previous digit. Trained with teacher
forcing (it reads the true previous digit); read with beam search (`beam_size: 1` is
greedy decoding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.decoding import beam_search
from convrec.models.layers import ConvStack
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("cnn_lstm_decoder")
class CNNLSTMDecoder(nn.Module):
    family = "hybrid"
    accepts = Accepts({"image"}, {"sequence"})
    decoding = "autoregressive"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64, 128),
        hidden_size: int = 256,
        embed_dim: int = 32,
        beam_size: int = 3,
        dropout: float = 0.2,
        **conv,
    ) -> None:
        super().__init__()
        if beam_size < 1:
            raise ConvrecError(
                f"cnn_lstm_decoder: beam_size={beam_size} is invalid, it must be >= 1 "
                f"(1 is greedy decoding); fix conf/model/cnn_lstm_decoder.yaml (net: ...)"
            )
        self.end, self.start_token = spec.num_classes, spec.num_classes + 1
        self.max_len, self.beam_size = spec.target_length, beam_size
        self.features = ConvStack(spec.input_shape[0], 2, list(channels), **conv)
        flat = math.prod(self.features.output_shape(spec.input_shape))
        self.to_state = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                      nn.Linear(flat, 2 * hidden_size), nn.Tanh())  # fmt: skip
        self.embedding = nn.Embedding(spec.num_classes + 2, embed_dim)  # digits, end, start
        self.rnn = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, spec.num_classes + 1)  # digits and end

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's initial (h, c), each (N, hidden), from the image."""
        h, c = self.to_state(self.features(x)).chunk(2, dim=-1)
        return h.contiguous(), c.contiguous()

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: targets (N, L) padded with -1 -> logits (N, L + 1, K + 1), step t
        predicting target t (step L: the end) from the start token and targets < t."""
        h, c = self.encode(x)
        start = targets.new_full((len(targets), 1), self.start_token)
        # Padding (-1) is read as digit 0: those steps come after the end and are not scored.
        inputs = self.embedding(torch.cat([start, targets.clamp(min=0)], dim=1))
        outputs, _ = self.rnn(inputs, (h[None], c[None]))
        return self.head(outputs)

    def step(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        outputs, (h, c) = self.rnn(self.embedding(tokens)[:, None], (h[None], c[None]))
        return self.head(outputs[:, 0]).log_softmax(-1), (h[0], c[0])

    def generate(self, x: torch.Tensor, beam_size: int | None = None) -> list[list[int]]:
        return beam_search(self.step, self.encode(x), self.start_token, self.end, self.max_len,
                           beam_size or self.beam_size)  # fmt: skip
