"""CNN + LSTM VQA by element-wise product (Antol et al. 2015, the seed's VQA design).

The image's feature map is projected to `fused` features (ReLU), the question's state to
`fused` gates (linear), the two are multiplied element-wise and a linear layer (or an MLP,
`hidden`) reads the product: the question picks which image features reach the answer,
so each question gets its own read-out of one shared image code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import IOSpec
from convrec.models.vqa_parts import (
    ImageEncoder,
    ProductFusion,
    QuestionEncoder,
    require_question,
)


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
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        require_question(spec, "vqa_product")
        self.image = ImageEncoder(spec, channels)
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        flat = math.prod(self.image.out_shape)
        self.fusion = ProductFusion(spec, flat, hidden_size, fused, hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.image(image), self.question(question))
