"""The shared ends of every sequence model: how inputs come in, how outputs leave.

Inputs: `SequenceInput` lays any input out as (N, T, F) for recurrent layers,
`ChannelInput` as (N, F, T) for 1-D convolutions; token ids go through an
embedding in both. Outputs: `OutputHead` turns per-step features into what the
task's target needs (one class, a class per step, or one value).

Variable-length batches come with `lengths`; `step_mask`, `masked_mean`,
`masked_max` and `last_valid` let a model ignore the padding, so padding never
changes a prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from convrec.models.spec import IOSpec, as_sequence


class SequenceInput(nn.Module):
    """x -> (N, T, F): tokens are embedded, images read row by row, sequences step by step."""

    def __init__(self, spec: IOSpec, embed_dim: int = 64) -> None:
        super().__init__()
        self.embedding = (
            nn.Embedding(spec.vocab_size, embed_dim) if spec.input_kind == "tokens" else None
        )
        if self.embedding is not None:
            self.features = embed_dim
        elif spec.input_kind == "image":
            self.features = spec.input_shape[0] * spec.input_shape[2]
        else:
            self.features = spec.input_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            return self.embedding(x)
        return as_sequence(x)


class ChannelInput(nn.Module):
    """x -> (N, F, T) for 1-D convolutions: tokens are embedded, sequences pass through."""

    def __init__(self, spec: IOSpec, embed_dim: int = 64) -> None:
        super().__init__()
        self.embedding = (
            nn.Embedding(spec.vocab_size, embed_dim) if spec.input_kind == "tokens" else None
        )
        self.features = embed_dim if self.embedding is not None else spec.input_shape[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Pass `lengths` so that embedded padding is zero, as padding of float inputs is."""
        if self.embedding is None:
            return x
        embedded = self.embedding(x).transpose(1, 2)
        mask = step_mask(lengths, embedded.shape[-1], embedded.device)
        return embedded if mask is None else embedded * mask


class OutputHead(nn.Module):
    """Per-step features (N, T, F) or pooled features (N, F) -> the task's output.

    "class": (N, K) logits; "steps" and "tags": (N, T, K) logits; "value": (N,) predictions.
    """

    def __init__(self, spec: IOSpec, in_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.target_kind = spec.target_kind
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear = nn.Linear(in_features, spec.out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.linear(self.dropout(features))
        return out.squeeze(-1) if self.target_kind == "value" else out






def step_mask(lengths: torch.Tensor | None, steps: int, device=None) -> torch.Tensor | None:
    """(N, 1, T) float mask, 1 on real steps, 0 on padding; None when every step is real."""
    if lengths is None:
        return None
    positions = torch.arange(steps, device=device if device is not None else lengths.device)
    return (positions[None, :] < lengths.to(positions.device)[:, None]).unsqueeze(1).float()


def masked_mean(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Global average pooling over time of (N, F, T), padding excluded."""
    if mask is None:
        return features.mean(-1)
    return (features * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def masked_max(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Max over time of (N, F, T), padding excluded (max-over-time pooling, Kim 2014)."""
    if mask is None:
        return features.amax(-1)
    return features.masked_fill(mask == 0, float("-inf")).amax(-1)


def last_valid(features: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The features (N, T, F) at each sequence's last real step -> (N, F)."""
    if lengths is None:
        return features[:, -1]
    index = (lengths.to(features.device) - 1).clamp(min=0)
    return features[torch.arange(len(features), device=features.device), index]
