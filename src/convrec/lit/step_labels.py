"""A label for every step of a sequence (copy memory): cross-entropy over all steps."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from convrec.lit.base import ACCURACY, LOSS, STAGES, SupervisedModule, metric_key


class StepLabelModule(SupervisedModule):
    # The literature (Bai et al. 2018) reports the per-step loss, so the loss picks and ranks.
    monitor = metric_key("val", LOSS)
    monitor_mode = "min"
    headline = ("loss", metric_key("test", LOSS), 1.0, False)
    history_keys = tuple(metric_key(s, m) for s in ("train", "val") for m in (LOSS, ACCURACY))

    def __init__(self, net: nn.Module, num_classes: int, optimizer, scheduler=None) -> None:
        super().__init__(net, optimizer, scheduler)
        self.loss_fn = nn.CrossEntropyLoss()
        self.accuracy = nn.ModuleDict(
            {f"{stage}_acc": MulticlassAccuracy(num_classes, average="micro") for stage in STAGES}
        )

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        logits = outputs.reshape(-1, outputs.shape[-1])  # (N*T, K): every step counts once
        accuracy = self.accuracy[f"{stage}_acc"]
        accuracy(logits, y.reshape(-1))
        self.log_metric(stage, ACCURACY, accuracy)
        return self.loss_fn(logits, y.reshape(-1))
