"""CNN + LSTM VQA by concatenation: Santoro et al. 2017's CNN+MLP baseline, with the question
read by an LSTM instead of given as a one-hot vector.

The flattened 5x5x24 feature map and the question state are concatenated; an MLP answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import Accepts, IOSpec
from convrec.models.vqa_parts import ImageEncoder, QuestionEncoder, answer_head, per_question


@MODELS.register("vqa_concat")
class VQAConcat(nn.Module):
    family = "hybrid"
    accepts = Accepts({"image"}, {"class"}, question=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (24, 24, 24, 24),
        embed_dim: int = 32,
        hidden_size: int = 128,
        hidden: Sequence[int] = (256, 256),  # Santoro's CNN_MLP: fc1 and fc2 of 256
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.image = ImageEncoder(spec, channels)
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        flat = math.prod(self.image.out_shape)
        self.head = answer_head(spec, flat + hidden_size, hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        image_features = per_question(self.image(image).flatten(1), question)
        fused = torch.cat([image_features, self.question(question)], dim=2)
        return self.head(fused)
