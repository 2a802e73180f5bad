"""Image only: Santoro's CNN and an MLP answer without reading the question.

A prior baseline for image QA: the best guess from the scene alone (the most likely
answer to a question about this image, whatever was asked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import Accepts, IOSpec
from convrec.models.vqa_parts import ImageEncoder, answer_head, per_question


@MODELS.register("image_cnn")
class ImageCNN(nn.Module):
    family = "cnn"
    accepts = Accepts({"image"}, {"class"}, question=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (24, 24, 24, 24),
        hidden: Sequence[int] = (256,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.image = ImageEncoder(spec, channels)
        self.head = answer_head(spec, math.prod(self.image.out_shape), hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        answers = self.head(self.image(image).flatten(1))  # the question is ignored by design
        return per_question(answers, question)  # the same answer to each of its questions
