"""One input sequence to one real value (the adding problem): mean squared error."""

from __future__ import annotations

import torch
from torch import nn

from convrec.lit.base import LOSS, SupervisedModule, metric_key
from convrec.models.spec import IOSpec


class RegressionModule(SupervisedModule):
    monitor = metric_key("val", LOSS)
    monitor_mode = "min"
    headline = ("mse", metric_key("test", LOSS), 1.0, False)  # the loss is the MSE
    history_keys = tuple(metric_key(s, LOSS) for s in ("train", "val"))

    def __init__(self, net: nn.Module, spec: IOSpec, optimizer, scheduler=None) -> None:
        super().__init__(net, optimizer, scheduler)
        self.loss_fn = nn.MSELoss()

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        return self.loss_fn(outputs, y.float())
