"""CNN + LSTM: a conv stack extracts local features, an LSTM reads the feature map in order.

An image's feature map (N, C, H, W) is read column by column, left to right
(as CRNN reads text lines); a sequence's (N, C, T) map step by step; tokens
are embedded first; a spectrogram (a task with `image_view`) goes through 2-D
convolutions and is read frame by frame. With variable lengths, every block
re-zeroes the padding and pooling shortens the lengths, so the LSTM (packed)
never reads past a sequence's end and padding never changes a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from convrec.models import MODELS
from convrec.models.io import OutputHead, step_mask
from convrec.models.layers import ConvStack
from convrec.models.recurrent import last_state, pack
from convrec.models.spec import Accepts, IOSpec


def columns_as_sequence(features: torch.Tensor) -> torch.Tensor:
    if features.dim() == 4:
        n, c, h, w = features.shape
        return features.permute(0, 3, 1, 2).reshape(n, w, c * h)
    return features.transpose(1, 2)


@MODELS.register("cnn_lstm")
class CNNLSTM(nn.Module):
    family = "hybrid"
    accepts = Accepts({"image", "sequence", "tokens"}, {"class", "value"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        channels: Sequence[int] = (32, 64),
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        embed_dim: int = 64,
        pool: str | None = "max",
        pool_size: int = 2,
        **conv,
    ) -> None:
        """`conv` holds the conv blocks' other knobs (kernel_size, activation, batch_norm,
        dropout), as ConvStack takes them."""
        super().__init__()
        self.as_image = spec.image_view
        self.embedding = (
            nn.Embedding(spec.vocab_size, embed_dim) if spec.input_kind == "tokens" else None
        )
        in_channels = embed_dim if self.embedding is not None else spec.channels
        dims = spec.spatial_dims
        if self.as_image:
            in_channels, dims = 1, 2
        self.shrink = pool_size if pool is not None else 1  # each block divides the length
        # Pooling needs this many steps; a batch of one-word phrases is cut to one step.
        self.min_steps = self.shrink ** len(channels)
        self.blocks = nn.ModuleList()
        for width in channels:
            self.blocks.append(ConvStack(in_channels, dims, [width], pool=pool,
                                         pool_size=pool_size, **conv))  # fmt: skip
            in_channels = width
        with torch.no_grad():
            steps = columns_as_sequence(
                self._features(self.eval()._prepare(spec.example(1), None), None)[0]
            )
        self.train()
        self.rnn = nn.LSTM(steps.shape[-1], hidden_size, num_layers, batch_first=True,
                           bidirectional=bidirectional)  # fmt: skip
        self.head = OutputHead(spec, hidden_size * (2 if bidirectional else 1))

    def _prepare(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if self.embedding is not None:  # (N, E, T), padding embedded as zeros
            embedded = self.embedding(x).transpose(1, 2)
            mask = step_mask(lengths, embedded.shape[-1], embedded.device)
            return embedded if mask is None else embedded * mask
        return x.unsqueeze(1) if self.as_image else x

    def _features(self, x: torch.Tensor, lengths: torch.Tensor | None):
        for block in self.blocks:
            x = block(x)
            if lengths is not None:
                lengths = torch.div(lengths, self.shrink, rounding_mode="floor").clamp(min=1)
                mask = step_mask(lengths, x.shape[-1], x.device)
                x = x * (mask.unsqueeze(2) if x.dim() == 4 else mask)
        return x, lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self._prepare(x, lengths)
        if x.dim() == 3:  # zeros past the end, as padding reads; lengths keep them unread
            x = F.pad(x, (0, max(0, self.min_steps - x.shape[-1])))
        features, lengths = self._features(x, lengths)
        return self.head(last_state(self.rnn, pack(columns_as_sequence(features), lengths)))
