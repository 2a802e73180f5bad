"""CNN + LSTM VQA by element-wise product (Antol et al. 2015, the seed's VQA design), taken
per cell of the CNN's map.

Each cell of the 5x5 map, with its coordinates, is projected to `fused` features (ReLU) and
multiplied element-wise by the question's `fused` gates (linear); the same ReLU layers read
every cell's product, the cells are summed and the answer head reads the sum
(`CellProductFusion`). The question picks which features of every cell count, so "is the
asked colour here" is learnt once for all cells; the seed multiplies one flattened image
code instead, which measured far slower to tell the colours apart (see CellProductFusion).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.spec import Accepts, IOSpec
from convrec.models.vqa_parts import CellProductFusion, ImageEncoder, MapCells, QuestionEncoder


@MODELS.register("vqa_product")
class VQAProduct(nn.Module):
    family = "hybrid"
    accepts = Accepts({"image"}, {"class"}, question=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (24, 24, 24, 24),
        embed_dim: int = 32,
        hidden_size: int = 128,
        fused: int = 128,
        cell_hidden: Sequence[int] = (128,),
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.image = ImageEncoder(spec, channels)
        self.cells = MapCells(self.image.out_shape)
        self.question = QuestionEncoder(spec, embed_dim, hidden_size)
        self.fusion = CellProductFusion(
            spec, [self.cells.out_features], hidden_size, fused, cell_hidden, hidden, dropout
        )

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.fusion([self.cells(self.image(image))], self.question(question))
