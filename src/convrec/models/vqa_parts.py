"""The shared parts of the image QA models (Sort-of-CLEVR): image encoder, question encoder,
answer head. Every VQA model is built from these, so the comparison changes only the fusion.

The image encoder is Santoro et al. 2017's: four 3x3 convolutions of stride 2, 24 channels,
batch norm and ReLU, a 75x75 image -> a 5x5 map of 24 features. The question encoder
embeds the tokens and keeps an LSTM's final state (the seed's VQA question encoder);
questions are left-padded, so the final state sits on the last word.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError
from convrec.models.io import OutputHead
from convrec.models.layers import ConvStack, mlp_layers
from convrec.models.recurrent import init_recurrent, last_state
from convrec.models.spec import IOSpec


def require_question(spec: IOSpec, model: str) -> None:
    if spec.input_kind != "image" or not spec.question_length or spec.target_kind != "class":
        raise ConvrecError(
            f"{model} answers questions about images (image QA tasks such as sort_of_clevr); "
            f"use cnn, lstm or cnn_lstm for this task"
        )


class ImageEncoder(nn.Module):
    """(N, C, H, W) -> (N, channels, h, w): Santoro's CNN (stride-2 convolutions, no pooling)."""

    def __init__(self, spec: IOSpec, channels: Sequence[int] = (24, 24, 24, 24)) -> None:
        super().__init__()
        self.convs = ConvStack(spec.channels, 2, list(channels), kernel_size=3, stride=2,
                               padding=1, pool=None, batch_norm=True)  # fmt: skip
        self.out_shape = self.convs.output_shape(spec.input_shape)  # (channels, h, w)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.convs(image)


class QuestionEncoder(nn.Module):
    """(N, Q) token ids -> (N, hidden_size): embedding, LSTM, final hidden state."""

    def __init__(self, spec: IOSpec, embed_dim: int = 32, hidden_size: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding(spec.vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        init_recurrent(self.rnn, "orthogonal", forget_bias=1.0)
        self.out_features = hidden_size

    def forward(self, question: torch.Tensor) -> torch.Tensor:
        return last_state(self.rnn, self.embedding(question))


def answer_head(spec: IOSpec, in_features: int, hidden: Sequence[int], dropout: float):
    """Fused features -> answer logits: ReLU layers (dropout after each), then a linear layer."""
    widths = list(hidden)
    return nn.Sequential(
        *mlp_layers(in_features, widths, "relu", dropout),
        OutputHead(spec, widths[-1] if widths else in_features),
    )
