"""A label for every step of a sequence (copy memory): cross-entropy over all steps."""

from __future__ import annotations

import torch

from convrec.lit.base import LOSS, metric_key
from convrec.lit.classification import ClassificationModule


class StepLabelModule(ClassificationModule):
    # The literature (Bai et al. 2018) reports the per-step loss, so the loss picks and ranks.
    monitor = metric_key("val", LOSS)
    monitor_mode = "min"
    headline = ("loss", metric_key("test", LOSS), 1.0, False)

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        # (N, T, K) logits against (N, T) labels: every step counts once.
        return super().compute(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1), stage)
