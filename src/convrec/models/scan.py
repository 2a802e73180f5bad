"""Recurrent layers trained in parallel: what minGRU, minLSTM and S4D share.

When a recurrence's gates depend on the input only, h_t = a_t * h_(t-1) + b_t is linear in h,
and every h_t = sum_(s <= t) (a_(s+1) ... a_t) b_s can be computed for all t at once (Feng et
al. 2024, "Were RNNs All We Needed?"): the decays a_(s+1) ... a_t are exp(A_t - A_s), with A
the cumulative sum of log a, so the whole sequence is a few tensor operations of depth
O(log T) instead of T steps (`scan`). Inference can still run one step at a time in constant
memory (`step`). Padding after a sequence's end never reaches its last real step: the scan is
causal. A diagonal state-space layer (S4D, convrec.models.s4d) is such a recurrence too,
computed as a long convolution.

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
    is exact (minGRU's activation, which keeps the paper's log-space form of b_t)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


BLOCK = 4  # steps whose pairwise decays one tensor holds; see scan


def scan(log_a: torch.Tensor, b: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """h_t = a_t h_(t-1) + b_t from h_0 = 0, for every t at once; log_a and b are (N, T, H),
    each a_t in [0, 1].

    Blockwise, as the chunked scans of linear recurrences do (Mamba-2's, GLA's): within a
    block, h_t = sum_(s <= t) exp(A_t - A_s) b_s + exp(A_t) h_start, with A the cumulative sum
    of log a from the block's start. A never rises, so every weight exp(A_t - A_s) lies in
    [0, 1]: nothing overflows, in any precision, and a weight below float32's range is one
    that does not matter. The states the blocks end in form a recurrence of T / block steps,
    scanned the same way, which gives each block its h_start: depth O(log T), work about
    1.3 x `block` times a step-by-step pass, in a few tensor operations per level. The
    log-cumsum-exp form (Heinsen 2023), chunked to 128 steps, drifted 3e-5 in float32 and
    took 1.6x as long on 2 CPU cores (forward + backward at N = 16, T = 2048, H = 75: 390
    against 245 ms), where log-cumsum-exp runs as a scalar loop."""
    n, steps, hidden = b.shape
    size = min(block, steps)
    pad = -steps % size  # padded steps come last: being causal, they change no real step
    log_a, b = (F.pad(v, (0, 0, 0, pad)) for v in (log_a, b))
    shape = (n, -1, size, hidden)
    cumulative = torch.cumsum(log_a.reshape(shape), dim=2)  # A_t within each block
    gaps = cumulative.unsqueeze(3) - cumulative.unsqueeze(2)  # A_t - A_s: (n, blocks, t, s, H)
    later = torch.ones(size, size, dtype=torch.bool, device=b.device).triu(1).unsqueeze(-1)
    weights = torch.exp(gaps.masked_fill(later, float("-inf")))  # 0 where s > t
    local = (weights * b.reshape(shape).unsqueeze(2)).sum(dim=3)  # from the block's own b
    if local.shape[1] > 1:  # each block starts where the blocks before it leave the state
        ends = scan(cumulative[:, :, -1], local[:, :, -1], block)
        starts = F.pad(ends[:, :-1], (0, 0, 1, 0)).unsqueeze(2)  # h_0 = 0 before the first
        local = local + torch.exp(cumulative) * starts
    return local.reshape(n, -1, hidden)[:, :steps]


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
            return scan(log_a, torch.exp(log_b))
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
