"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates and candidate
depend on the input only, its forget and input gates normalised to sum to one (which makes
it time-independent in scale), trained as a parallel scan.

  f_t, i_t = sigmoid(W_f x_t), sigmoid(W_i x_t);  f'_t, i'_t = f_t, i_t / (f_t + i_t)
  h~_t = g(W_h x_t),  h_t = f'_t h_(t-1) + i'_t h~_t

in log space: with d = softplus(-k_f) - softplus(-k_i), log f' = -softplus(d) and
log i' = -softplus(-d) (convrec.models.scan).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convrec.models import MODELS
from convrec.models.scan import MinRecurrence, ScanNet, log_g


class MinLSTMCell(MinRecurrence):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__(features, hidden)
        self.gates_and_candidate = nn.Linear(features, 3 * hidden)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_f, k_i, candidate = self.gates_and_candidate(x).chunk(3, dim=-1)
        d = F.softplus(-k_f) - F.softplus(-k_i)
        return -F.softplus(d), -F.softplus(-d) + log_g(candidate)


@MODELS.register("minlstm")
class MinLSTM(ScanNet):
    cell = MinLSTMCell
