"""One input (image or sequence) to one class label."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

# Every metric name used by checkpoints, history, MLflow and the leaderboard comes from here.
LOSS = "loss"
ACCURACY = "acc"
STAGES = ("train", "val", "test")


def metric_key(stage: str, name: str) -> str:
    return f"{stage}/{name}"


class ClassificationModule(L.LightningModule):
    monitor = metric_key("val", ACCURACY)
    monitor_mode = "max"
    # The leaderboard's headline: name, logged key, scale to report it in (percent).
    headline = ("accuracy", metric_key("test", ACCURACY), 100.0)
    history_keys = tuple(metric_key(s, m) for s in ("train", "val") for m in (LOSS, ACCURACY))

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_fn = nn.CrossEntropyLoss()
        self.accuracy = nn.ModuleDict(
            {f"{stage}_acc": MulticlassAccuracy(num_classes, average="micro") for stage in STAGES}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        accuracy = self.accuracy[f"{stage}_acc"]
        accuracy(logits, y)
        # Epoch-level values only: one name per metric everywhere (no _step/_epoch forks).
        self.log(metric_key(stage, LOSS), loss, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True, batch_size=len(y))  # fmt: skip
        self.log(metric_key(stage, ACCURACY), accuracy, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True)  # fmt: skip
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
