"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates and candidate
depend on the input only, its forget and input gates normalised to sum to one (which makes
it time-independent in scale), trained as a parallel scan.

  f_t, i_t = sigmoid(W_f x_t), sigmoid(W_i x_t);  f'_t, i'_t = f_t, i_t / (f_t + i_t)
  h~_t = g(W_h x_t),  h_t = f'_t h_(t-1) + i'_t h~_t

computed without dividing: with d = log i_t - log f_t = softplus(-k_f) - softplus(-k_i),
f'_t = sigmoid(-d) and i'_t = sigmoid(d), exact even where both gates are below float32's
range (convrec.models.scan).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convrec.models import MODELS
from convrec.models.scan import MinRecurrence, ScanNet, g


class MinLSTMCell(MinRecurrence):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__(features, hidden)
        self.gates_and_candidate = nn.Linear(features, 3 * hidden)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_f, k_i, candidate = self.gates_and_candidate(x).chunk(3, dim=-1)
        d = F.softplus(-k_f) - F.softplus(-k_i)
        return torch.sigmoid(-d), torch.sigmoid(d) * g(candidate)


@MODELS.register("minlstm")
class MinLSTM(ScanNet):
    cell = MinLSTMCell
