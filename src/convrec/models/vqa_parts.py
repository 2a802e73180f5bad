"""The shared parts of the image QA models (Sort-of-CLEVR): image encoder, question encoder,
answer head. Every VQA model is built from these, so the comparison changes only the fusion.

The image encoder is Santoro et al. 2017's: four 3x3 convolutions of stride 2, 24 channels,
batch norm and ReLU, a 75x75 image -> a 5x5 map of 24 features. The question encoder
embeds the tokens and keeps an LSTM's final state (the seed's VQA question encoder);
questions are left-padded, so the final state sits on the last word.

A batch holds N images with K questions each, (N, K, Q); the image is encoded once and its
features are shared by its K questions (`per_question`), so models answer (N, K, classes).
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
    """(N, K, Q) token ids -> (N, K, hidden_size): embedding, LSTM, final hidden state, plus
    (`word_skip`) a linear map of the sum of the word embeddings.

    Why the skip: measured on Sort-of-CLEVR, the LSTM's final states of questions that
    differ in one colour word are close (the word is up to 4 steps back), and models fed
    them stayed at the colour-blind answer (~63% non-relational: "are most objects on the
    left") for 15 epochs, even with the LSTM frozen or its state normalised. Bag-of-words
    or one learned vector per question left that plateau within 2 epochs; the skip gives
    the LSTM's output that direct word path.
    """

    def __init__(
        self, spec: IOSpec, embed_dim: int = 32, hidden_size: int = 128, word_skip: bool = True
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(spec.vocab_size, embed_dim, padding_idx=0)
        self.rnn = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        init_recurrent(self.rnn, "orthogonal", forget_bias=1.0)
        self.skip = nn.Linear(embed_dim, hidden_size, bias=False) if word_skip else None
        self.out_features = hidden_size

    def forward(self, question: torch.Tensor) -> torch.Tensor:
        # A task has few distinct questions (Sort-of-CLEVR: 36); the LSTM reads each once.
        distinct, index = torch.unique(question.flatten(0, 1), dim=0, return_inverse=True)
        words = self.embedding(distinct)
        state = last_state(self.rnn, words)
        if self.skip is not None:
            state = state + self.skip(words.sum(dim=1))
        return state[index].unflatten(0, question.shape[:2])


def per_question(features: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
    """(N, F) image features -> (N, K, F): shared, not copied, by the image's K questions."""
    return features[:, None].expand(-1, question.shape[1], -1)


def answer_head(spec: IOSpec, in_features: int, hidden: Sequence[int], dropout: float):
    """Fused features (..., F) -> answer logits (..., classes): ReLU layers (dropout after
    each), then a linear layer."""
    widths = list(hidden)
    return nn.Sequential(
        *mlp_layers(in_features, widths, "relu", dropout),
        OutputHead(spec, widths[-1] if widths else in_features),
    )


class ProductFusion(nn.Module):
    """An image code (N, ...) and question states (N, K, hidden) -> answers (N, K, classes).

    The flattened code is projected to `fused` features (ReLU) once per image, each question
    to `fused` gates (linear); their element-wise product goes to the answer head, so each
    question gets its own read-out of the image's one code (the seed's VQA fusion).
    """

    def __init__(
        self,
        spec: IOSpec,
        code_features: int,
        hidden_size: int,
        fused: int,
        hidden: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        self.image_proj = nn.Sequential(nn.Flatten(), nn.Linear(code_features, fused), nn.ReLU())
        self.question_proj = nn.Linear(hidden_size, fused)
        self.head = answer_head(spec, fused, hidden, dropout)

    def forward(self, code: torch.Tensor, question_state: torch.Tensor) -> torch.Tensor:
        features = per_question(self.image_proj(code), question_state)
        return self.head(features * self.question_proj(question_state))
