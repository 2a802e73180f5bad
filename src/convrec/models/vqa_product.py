"""CNN + LSTM VQA by element-wise product (Antol et al. 2015, the seed's VQA design).

The image's feature map and the question's LSTM state are each projected to `fused`
features (tanh), multiplied element-wise, and an MLP reads the product: the question
gates which image features reach the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import IOSpec
from convrec.models.vqa_parts import ImageEncoder, QuestionEncoder, answer_head, require_question


@MODELS.register("vqa_product")
class VQAProduct(nn.Module):
    family = "hybrid"

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (24, 24, 24, 24),
        embed_dim: int = 32,
        hidden_size: int = 128,
        fused: int = 256,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        require_question(spec, "vqa_product")
        self.image = ImageEncoder(spec, channels)
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        flat = math.prod(self.image.out_shape)
        self.image_proj = nn.Sequential(nn.Flatten(), nn.Linear(flat, fused), nn.Tanh())
        self.question_proj = nn.Sequential(nn.Linear(hidden_size, fused), nn.Tanh())
        self.head = answer_head(spec, fused, hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        image_features = self.image_proj(self.image(image))
        return self.head(image_features * self.question_proj(self.question(question)))
