"""CNN + LSTM + a relation module (Santoro et al. 2017, A simple neural network module for
relational reasoning).

Each cell of the CNN's 5x5 map, with its (x, y) coordinates, is an object. A network g
reads every ordered pair of objects with the question, [o_i, o_j, q]; its outputs are
pooled over all 625 pairs and f answers: RN(O, q) = f(sum_ij g(o_i, o_j, q)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.layers import mlp_layers
from convrec.models.spec import IOSpec
from convrec.models.vqa_parts import ImageEncoder, QuestionEncoder, answer_head, require_question


@MODELS.register("relation_net")
class RelationNet(nn.Module):
    family = "hybrid"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (24, 24, 24, 24),
        embed_dim: int = 32,
        hidden_size: int = 128,
        g_hidden: Sequence[int] = (128, 128, 128),  # Santoro: 4 layers of 256
        f_hidden: Sequence[int] = (256,),  # Santoro: 256, 256
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        require_question(spec, "relation_net")
        self.image = ImageEncoder(spec, channels)
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        c, h, w = self.image.out_shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        self.register_buffer(
            "coords", torch.stack([xs, ys], -1).reshape(h * w, 2), persistent=False
        )
        self.object_features = c + 2
        widths = list(g_hidden)
        self.g_first = nn.Linear(2 * self.object_features + hidden_size, widths[0])
        self.g_rest = nn.Sequential(nn.ReLU(), *mlp_layers(widths[0], widths[1:], "relu", 0.0))
        self.f = answer_head(spec, widths[-1], f_hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        cells = self.image(image).flatten(2).transpose(1, 2)  # (N, h * w, C)
        objects = torch.cat([cells, self.coords.expand(len(cells), -1, -1)], dim=2)
        q = self.question(question)
        # g's first layer on [o_i, o_j, q] is W_i o_i + W_j o_j + W_q q + b; the three parts
        # computed apart cost 2 * 25 products per image instead of 625.
        w_i, w_j, w_q = self.g_first.weight.split(
            [self.object_features, self.object_features, q.shape[1]], dim=1
        )
        first = (
            (objects @ w_i.T)[:, :, None]
            + (objects @ w_j.T)[:, None, :]
            + (q @ w_q.T + self.g_first.bias)[:, None, None]
        )  # (N, h * w, h * w, width): every ordered pair, itself included, as Santoro's
        # The mean over pairs is the paper's sum scaled by a constant: f's inputs keep g's scale.
        return self.f(self.g_rest(first).mean(dim=(1, 2)))
