"""Question only: an LSTM reads the question and an MLP answers without the image.

A prior baseline for image QA: what the answers' dependence on the question alone gives
(on Sort-of-CLEVR: the answer type, and the most common answer of each question type).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import Accepts, IOSpec
from convrec.models.vqa_parts import QuestionEncoder, answer_head


@MODELS.register("question_lstm")
class QuestionLSTM(nn.Module):
    family = "rnn"
    accepts = Accepts({"image"}, {"class"}, question=True)

    def __init__(
        self,
        spec: IOSpec,
        embed_dim: int = 32,
        hidden_size: int = 128,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        self.head = answer_head(spec, hidden_size, hidden, dropout)

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.head(self.question(question))  # the image is ignored by design
