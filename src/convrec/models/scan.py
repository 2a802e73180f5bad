"""Recurrent layers trained in parallel: what minGRU, minLSTM and S4D share.

When a recurrence's gates depend on the input only, h_t = a_t * h_(t-1) + b_t is linear in h,
and every h_t can be computed for all t at once (Feng et al. 2024, "Were RNNs All We
Needed?"): two steps compose into one, so the whole sequence is a few tensor operations per
halving, depth O(log T), instead of T steps (`scan`). Inference can still run one step at a
time in constant memory (`step`). Padding after a sequence's end never reaches its last real
step: the scan is causal. A diagonal state-space layer (S4D, convrec.models.s4d) is such a
recurrence too, computed as a long convolution.

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


def g(x: torch.Tensor) -> torch.Tensor:
    """minGRU's activation for the candidate state: x + 0.5 for x >= 0, sigmoid(x) below
    (continuous, positive, as the paper's log-space form needs; kept so the model is the
    paper's), written without a mask: relu(x) + sigmoid(min(x, 0))."""
    return F.relu(x) + torch.sigmoid(x.clamp(max=0))


def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_(t-1) + b_t from h_0 = 0, for every t at once; a and b are (N, T, H),
    each a_t in [0, 1].

    Odd-even reduction (the classic parallel prefix): two steps compose into one, a_2 a_1 and
    a_2 b_1 + b_2, so the pairs form a recurrence half as long; scanned the same way, it gives
    the state at every second step, and one more step from there the rest: depth O(log T),
    about three times the work of a step-by-step pass, in a few tensor operations per level.
    In real space every product of decays stays in [0, 1] (one below float32's range is one
    that does not matter), so nothing overflows in any precision. This is why the paper's
    log space is not needed here: it makes the cumulative-sum form (h_t = exp(A_t) sum_s
    exp(log b_s - A_s), A the cumulative sum of log a) stable, and that form is slower on a
    CPU. Measured on 2 cores (forward + backward at N = 16, T = 2048, H = 76): 82 ms here;
    356 ms for blocks of 4 steps with pairwise decays exp(A_t - A_s) (the form of chunked
    scans); the log-cumsum-exp form (Heinsen 2023), chunked to 128 steps, about 1.6x the
    blocks' time, drifting 3e-5 in float32 (log-cumsum-exp runs as a scalar loop)."""
    n, steps, hidden = b.shape
    if steps == 1:
        return b
    if steps % 2:  # one padded step at the end: being causal, it changes no real step
        a, b = F.pad(a, (0, 0, 0, 1)), F.pad(b, (0, 0, 0, 1))
    a_first, a_second, b_first, b_second = a[:, 0::2], a[:, 1::2], b[:, 0::2], b[:, 1::2]
    ends = scan(a_second * a_first, torch.addcmul(b_second, a_second, b_first))
    before = F.pad(ends[:, :-1], (0, 0, 1, 0))  # the state before each pair; h_0 = 0
    firsts = torch.addcmul(b_first, a_first, before)
    return torch.stack((firsts, ends), dim=2).reshape(n, -1, hidden)[:, :steps]


class MinRecurrence(nn.Module):
    """One minimal recurrent layer: `coefficients(x)` gives a_t (in [0, 1]) and b_t from the
    input alone. `forward` computes every step in parallel (training); `step` one step from the
    previous state (inference, constant memory). Both give the same h."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        a, b = self.coefficients(x)
        if mode == "parallel":
            return scan(a, b)
        h = x.new_zeros(x.shape[0], self.hidden)
        outputs = []
        for t in range(x.shape[1]):
            h = self.step(h, a[:, t], b[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1)

    @staticmethod
    def step(h: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(b, a, h)


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
