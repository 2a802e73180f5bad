"""CNN for sentence classification (Kim 2014, the CNN-rand variant: embeddings learnt from scratch).

Parallel convolutions of several widths (3, 4, 5 tokens x 100 filters) over the embedded
sequence, ReLU, max over time, concatenated, dropout 0.5, a linear head. Float sequences skip
the embedding and convolve their channels directly.

Convolutions are narrow, as in the paper: a width-k filter has L - k + 1 windows over a
length-L sequence, and the max runs over those only, so padding never wins it. A sequence
shorter than k gets one window, zero-filled past its end; the input is padded with zeros up
to the widest filter so such a batch still runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from convrec.errors import ConvrecError
from convrec.models import MODELS
from convrec.models.io import ChannelInput, OutputHead, masked_max, step_mask
from convrec.models.spec import Accepts, IOSpec


@MODELS.register("textcnn")
class TextCNN(nn.Module):
    family = "cnn"
    accepts = Accepts({"sequence", "tokens"}, {"class", "value"}, variable_length=True)

    def __init__(
        self,
        spec: IOSpec,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        filters: int = 100,
        dropout: float = 0.5,
        embed_dim: int = 128,
    ) -> None:
        super().__init__()
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConvrecError(
                f"textcnn needs one or more kernel sizes >= 1, got {list(kernel_sizes)}; "
                f"fix conf/model/textcnn.yaml (net: kernel_sizes)"
            )
        self.input = ChannelInput(spec, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(self.input.features, filters, k) for k in kernel_sizes)
        self.min_steps = max(kernel_sizes)
        self.head = OutputHead(spec, filters * len(kernel_sizes), dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input(x)
        n, _, steps = x.shape
        if lengths is None:  # still needed: padding a short batch adds steps past the end
            lengths = torch.full((n,), steps, dtype=torch.long, device=x.device)
        # Zero the padding (a token's embedding is not zero), then make room for the widest filter.
        x = F.pad(x * step_mask(lengths, steps, x.device), (0, max(0, self.min_steps - steps)))
        pooled = []
        for conv in self.convs:
            out = torch.relu(conv(x))
            windows = (lengths - conv.kernel_size[0] + 1).clamp(min=1)
            pooled.append(masked_max(out, step_mask(windows, out.shape[-1], x.device)))
        return self.head(torch.cat(pooled, dim=1))
