"""CRNN (Shi, Bai & Yao 2015): conv features read column by column by a BiLSTM, trained with CTC.

The conv stack turns a text-line image into a short sequence of column features; the
BiLSTM gives every column the context of its neighbours; a CTC head emits a class or
blank per column, so the model never needs to know where a digit starts. With no conv
layers it is the single-family baseline: an LSTM over the raw pixel columns + CTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.cnn_lstm import columns_as_sequence
from convrec.models.layers import ConvStack
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("crnn")
class CRNN(nn.Module):
    family = "hybrid"
    accepts = Accepts({"image"}, {"sequence"})
    decoding = "ctc"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64, 128),
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        **conv,
    ) -> None:
        """`conv` holds the conv blocks' knobs (kernel_size, pool, pool_size, batch_norm, ...)."""
        super().__init__()
        self.features = ConvStack(spec.input_shape[0], 2, list(channels), **conv)
        columns = columns_as_sequence(self.features(spec.example(1)))
        if columns.shape[1] < 2 * spec.target_length - 1:  # CTC needs a blank between repeats
            raise ConvrecError(
                f"the conv stack leaves {columns.shape[1]} columns, too few for CTC to write "
                f"{spec.target_length} labels; pool less (net.pool_size, net.channels)"
            )
        self.rnn = nn.LSTM(columns.shape[-1], hidden_size, num_layers, batch_first=True,
                           bidirectional=bidirectional)  # fmt: skip
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), spec.num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> per-column logits (N, W', K + 1), class K the CTC blank."""
        outputs, _ = self.rnn(columns_as_sequence(self.features(x)))
        return self.head(outputs)


@MODELS.register("lstm_ctc")
class ColumnLSTM(CRNN):
    """The recurrent baseline: an LSTM over the image's pixel columns, CTC head, no convolutions."""

    family = "rnn"

    def __init__(self, spec: IOSpec, **hparams) -> None:
        super().__init__(spec, channels=(), **hparams)
