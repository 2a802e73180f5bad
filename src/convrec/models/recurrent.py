"""Recurrent networks: vanilla RNN (tanh, or IRNN), LSTM, GRU and BiLSTM.

Images are read row by row (a 28x28 digit is 28 steps of 28 pixels), sequences
step by step, token ids through an embedding. Variable-length batches are
packed, so the recurrence stops at each sequence's own last step and padding
never changes a prediction. One label per sequence comes from the final
hidden state; a label per step (or a tag per token) from every step's output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.io import OutputHead, SequenceInput
from convrec.models.spec import Accepts, IOSpec

INITS = ("orthogonal", "identity", "default")


def last_state(rnn: nn.RNNBase, sequence) -> torch.Tensor:
    """The top layer's final hidden state; both directions concatenated when bidirectional.

    `sequence` may be packed: h_n then holds each sequence's state at its own last step.
    """
    _, state = rnn(sequence)
    h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
    if rnn.bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=1)
    return h_n[-1]


def pack(sequence: torch.Tensor, lengths: torch.Tensor | None):
    if lengths is None:
        return sequence
    return pack_padded_sequence(sequence, lengths.cpu(), batch_first=True, enforce_sorted=False)


def step_outputs(rnn: nn.RNNBase, sequence: torch.Tensor, lengths: torch.Tensor | None):
    """The top layer's output at every step (N, T, H), zero past each sequence's end."""
    outputs, _ = rnn(pack(sequence, lengths))
    if lengths is None:
        return outputs
    outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=sequence.shape[1])
    return outputs


def init_recurrent(rnn: nn.RNNBase, init: str, forget_bias: float) -> None:
    """Orthogonal recurrent weights keep gradients from exploding or vanishing at the start;
    identity recurrence with zero biases is the IRNN of Le, Jaitly & Hinton 2015; an LSTM's
    forget-gate bias of 1 lets it remember by default (Jozefowicz et al. 2015)."""
    if init not in INITS:
        raise ConvrecError(f"recurrent init {init!r} is unknown; use one of {', '.join(INITS)}")
    hidden = rnn.hidden_size
    for name, param in rnn.named_parameters():
        if name.startswith("weight_hh") and init != "default":
            for gate in param.data.split(hidden, dim=0):
                if init == "orthogonal":
                    nn.init.orthogonal_(gate)
                else:
                    nn.init.eye_(gate)
        elif name.startswith("bias") and init == "identity":
            nn.init.zeros_(param)
        if isinstance(rnn, nn.LSTM) and name.startswith("bias_"):
            # Gates are ordered i, f, g, o; the two biases add up, so one carries the value.
            param.data[hidden : 2 * hidden] = forget_bias if name.startswith("bias_ih") else 0.0


class RecurrentNet(nn.Module):
    family = "rnn"
    accepts = Accepts({"image", "sequence", "tokens"}, {"class", "value", "steps", "tags"},
                      variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embed_dim: int = 64,
        init: str = "orthogonal",
        forget_bias: float = 1.0,
        head_dropout: float = 0.0,
        **cell_options,
    ) -> None:
        super().__init__()
        self.per_step = spec.per_step
        self.input = SequenceInput(spec, embed_dim)
        self.rnn = self.make_cell(
            self.input.features, hidden_size, num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
            **cell_options,
        )  # fmt: skip
        init_recurrent(self.rnn, init, forget_bias)
        self.head = OutputHead(spec, hidden_size * (2 if bidirectional else 1), head_dropout)

    def make_cell(self, *args, **kwargs) -> nn.RNNBase:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        sequence = self.input(x)
        if self.per_step:
            return self.head(step_outputs(self.rnn, sequence, lengths))
        return self.head(last_state(self.rnn, pack(sequence, lengths)))


@MODELS.register("rnn")
class VanillaRNN(RecurrentNet):
    """Elman RNN; `nonlinearity: relu` with `init: identity` is the IRNN."""

    def make_cell(self, *args, nonlinearity: str = "tanh", **kwargs) -> nn.RNNBase:
        if nonlinearity not in ("tanh", "relu"):
            raise ConvrecError(f"rnn nonlinearity {nonlinearity!r} is unknown; use tanh or relu")
        return nn.RNN(*args, nonlinearity=nonlinearity, **kwargs)


@MODELS.register("lstm")
class LSTMNet(RecurrentNet):
    def make_cell(self, *args, **kwargs) -> nn.RNNBase:
        return nn.LSTM(*args, **kwargs)


@MODELS.register("gru")
class GRUNet(RecurrentNet):
    def make_cell(self, *args, **kwargs) -> nn.RNNBase:
        return nn.GRU(*args, **kwargs)


@MODELS.register("bilstm")
class BiLSTMNet(LSTMNet):
    """An LSTM reading both ways (its own entry, so it has its own config and leaderboard row)."""

    def __init__(self, spec: IOSpec, bidirectional: bool = True, **hparams) -> None:
        super().__init__(spec, bidirectional=bidirectional, **hparams)
