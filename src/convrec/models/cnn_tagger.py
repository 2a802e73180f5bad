"""CNN tagger: a stack of "same"-padded 1-D convolutions, no pooling, a label per step.

Each step's label sees a window of 1 + layers * (kernel_size - 1) steps around it
(7 words with the defaults), on both sides: a convolution reads ahead as well as
behind. Tokens are embedded; float sequences are convolved as they are.

Padding never changes a prediction: the embedded padding is zero, and every block
zeroes the padding again (batch norm's shift and the activation would otherwise
make it nonzero), so a step near a sequence's end sees the zeros a "same"
convolution pads with, whether or not the batch holds longer sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.io import ChannelInput, OutputHead, step_mask
from convrec.models.layers import ConvStack
from convrec.models.spec import Accepts, IOSpec


class MaskedConvFeatures(nn.Module):
    """x -> (N, C, T) features of "same" conv blocks, zero on padding after every block."""

    def __init__(
        self, spec: IOSpec, channels: Sequence[int], embed_dim: int, model: str, **conv
    ) -> None:
        """`conv`: the blocks' other knobs (kernel_size, dilation, activation, batch_norm,
        dropout), as ConvStack takes them."""
        super().__init__()
        if conv.get("stride", 1) != 1 or conv.get("padding", "same") != "same":
            raise ConvrecError(
                f"{model} keeps one output per step: use stride 1 and padding same "
                f"(fix conf/model/{model}.yaml)"
            )
        self.input = ChannelInput(spec, embed_dim)
        self.blocks = nn.ModuleList()
        width = self.input.features
        for out_channels in channels:
            self.blocks.append(ConvStack(width, 1, [out_channels], pool=None, **conv))
            width = out_channels
        self.out_channels = width

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        features = self.input(x, lengths)
        mask = step_mask(lengths, features.shape[-1], features.device)
        for block in self.blocks:
            features = block(features)
            if mask is not None:
                features = features * mask
        return features


@MODELS.register("cnn_tagger")
class CNNTagger(nn.Module):
    family = "cnn"
    accepts = Accepts({"sequence", "tokens"}, {"steps", "tags"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (128, 128, 128),
        embed_dim: int = 64,
        head_dropout: float = 0.0,
        **conv,
    ) -> None:
        super().__init__()
        self.features = MaskedConvFeatures(spec, channels, embed_dim, "cnn_tagger", **conv)
        self.head = OutputHead(spec, self.features.out_channels, head_dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, lengths).transpose(1, 2))
