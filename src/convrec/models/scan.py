"""Recurrent layers trained in parallel: what minGRU, minLSTM and S4D share.

When a recurrence's gates depend on the input only, h_t = a_t * h_(t-1) + b_t is linear in h,
and every h_t = sum_(s <= t) (a_(s+1) ... a_t) b_s can be computed for all t at once: with
A_t = log a_1 + ... + log a_t, h_t = exp(A_t) * sum_(s <= t) exp(log b_s - A_s), a cumulative
sum and a log-cumsum-exp (Feng et al. 2024, "Were RNNs All We Needed?", Heinsen 2023): depth
O(log T) within chunks of 128 steps plus one step per chunk, instead of T steps. Inference can
still run one step at a time in constant memory (`step`). Padding after a sequence's end never
reaches its last real step: the scan is causal. A diagonal state-space layer (S4D,
convrec.models.s4d) is such a recurrence too, computed as a long convolution.

`ScanNet` stacks such layers as the minGRU paper does (pre-norm, residual, a feed-forward
layer after each) between the lab's usual input and output ends (convrec.models.io).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convrec.errors import ConvrecError
from convrec.models.io import OutputHead, SequenceInput, last_valid
from convrec.models.spec import Accepts, IOSpec

MODES = ("parallel", "sequential")


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log of g(x) = x + 0.5 for x >= 0, sigmoid(x) below: a positive candidate state whose log
    is exact (minGRU's activation; positivity is what the log-space scan needs)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


CHUNK = 128  # steps scanned at once; see log_scan


def log_scan(log_a: torch.Tensor, log_b: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """h_t = a_t h_(t-1) + b_t from h_0 = 0, for all t at once; inputs (N, T, H) as logs.

    In chunks of `chunk` steps: A_t grows with t (about -1 per step for random gates), and
    float32 loses |A_t| * 6e-8 of relative precision in exp(A_t + ...): 4e-4 at T = 2048 in
    one piece, 1e-5 within 128 steps. Every chunk is scanned at once; the state then crosses
    the T / chunk chunk boundaries one after the other, in linear space (16 steps at T = 2048).
    """
    steps = log_a.shape[1]
    chunk = min(chunk, steps)  # a short sequence is one chunk, not padded to a long one
    pad = -steps % chunk  # padded steps come last: being causal, they change no real step
    log_a, log_b = (F.pad(v, (0, 0, 0, pad)) for v in (log_a, log_b))
    n, _, hidden = log_a.shape
    shape = (n, -1, chunk, hidden)
    cumulative = torch.cumsum(log_a.reshape(shape), dim=2)
    local = torch.exp(cumulative + torch.logcumsumexp(log_b.reshape(shape) - cumulative, dim=2))
    decay = torch.exp(cumulative)  # a_(start) ... a_t within the chunk
    state, outputs = log_a.new_zeros(n, 1, hidden), []
    for i in range(local.shape[1]):
        outputs.append(local[:, i] + decay[:, i] * state)
        state = outputs[-1][:, -1:]
    return torch.cat(outputs, dim=1)[:, :steps]


class MinRecurrence(nn.Module):
    """One minimal recurrent layer: `coefficients(x)` gives log a_t and log b_t from the input
    alone. `forward` computes every step in parallel (training); `step` one step from the
    previous state (inference, constant memory). Both give the same h."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        log_a, log_b = self.coefficients(x)
        if mode == "parallel":
            return log_scan(log_a, log_b)
        h = x.new_zeros(x.shape[0], self.hidden)
        outputs = []
        for t in range(x.shape[1]):
            h = self.step(h, log_a[:, t], log_b[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1)

    @staticmethod
    def step(h: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
        return torch.exp(log_a) * h + torch.exp(log_b)


class ScanBlock(nn.Module):
    """x + recurrence(norm(x)), then x + feed-forward(norm(x)); `expansion` widens the state."""

    def __init__(self, cell: type[nn.Module], width: int, expansion: float, dropout: float):
        super().__init__()
        hidden = int(width * expansion)
        self.norm = nn.LayerNorm(width)
        self.cell = cell(width, hidden)
        self.out = nn.Linear(hidden, width, bias=False) if hidden != width else nn.Identity()
        self.ff_norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        x = x + self.dropout(self.out(self.cell(self.norm(x), mode)))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class ScanNet(nn.Module):
    """Input -> width -> `num_layers` scan blocks -> norm -> the task's head (the last real
    step for one label per sequence, every step for a label per step). `mode`: "parallel"
    (the scan) or "sequential" (one step at a time); the outputs are the same."""

    family = "scan"
    accepts = Accepts({"image", "sequence", "tokens"}, {"class", "value", "steps", "tags"},
                      variable_length=True)  # fmt: skip
    cell: type[nn.Module]  # (features, hidden) -> a layer called as layer(x, mode)

    def __init__(
        self,
        spec: IOSpec,
        width: int = 128,
        num_layers: int = 2,
        expansion: float = 1.0,
        dropout: float = 0.0,
        embed_dim: int = 64,
        mode: str = "parallel",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConvrecError(f"scan mode {mode!r} is unknown; use one of {', '.join(MODES)}")
        self.mode = mode
        self.per_step = spec.per_step
        self.input = SequenceInput(spec, embed_dim)
        self.project = nn.Linear(self.input.features, width)
        self.blocks = nn.ModuleList(
            ScanBlock(self.cell, width, expansion, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.head = OutputHead(spec, width)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        features = self.project(self.input(x))
        for block in self.blocks:
            features = block(features, self.mode)
        features = self.norm(features)
        return self.head(features if self.per_step else last_valid(features, lengths))
