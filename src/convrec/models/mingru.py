"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate and candidate state
depend on the input only, so that the recurrence is linear and trains as a parallel scan.

  z_t = sigmoid(W_z x_t),  h~_t = g(W_h x_t),  h_t = (1 - z_t) h_(t-1) + z_t h~_t

with 1 - z_t = sigmoid(-k_t) computed as such (not as 1 - sigmoid, which loses the small
decays), for k_t = W_z x_t; the scan in convrec.models.scan.
"""

from __future__ import annotations

import torch
from torch import nn

from convrec.models import MODELS
from convrec.models.scan import MinRecurrence, ScanNet, g


class MinGRUCell(MinRecurrence):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__(features, hidden)
        self.gate_and_candidate = nn.Linear(features, 2 * hidden)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, candidate = self.gate_and_candidate(x).chunk(2, dim=-1)
        return torch.sigmoid(-k), torch.sigmoid(k) * g(candidate)


@MODELS.register("mingru")
class MinGRU(ScanNet):
    cell = MinGRUCell
