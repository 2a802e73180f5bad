"""What every LightningModule of the lab shares: the batch layout, logging and optimisation.

Subclasses (one per kind of target) say which loss and metrics they compute,
which metric picks the best checkpoint, and which one the leaderboard shows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import lightning as L
import torch
from torch import nn

# Every metric name used by checkpoints, history, MLflow and the leaderboard comes from here.
LOSS = "loss"
ACCURACY = "acc"
F1 = "f1"  # entity-level F1 of slot filling
STAGES = ("train", "val", "test")


def metric_key(stage: str, name: str) -> str:
    return f"{stage}/{name}"


class SupervisedModule(L.LightningModule):
    monitor: str  # the validation metric that picks the best checkpoint
    monitor_mode: str  # "max" or "min"
    # The leaderboard's headline: name, logged key, scale to report it in, higher is better.
    headline: tuple[str, str, float, bool]
    history_keys: tuple[str, ...]

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        # `rest` is what the task adds (lengths, a question), so other models never see it.
        return self.net(x, *rest)

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        """Update this stage's metrics, return the loss."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor, *rest: torch.Tensor):
        """What inference runs on a batch (the run's latency times it): the model's outputs,
        or the decoded predictions where decoding is part of predicting."""
        return self(x, *rest)

    def confusion_matrix(self) -> torch.Tensor | None:
        """(true class, predicted class) counts over the test set, for class targets."""
        return None

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, *rest, y = batch
        loss = self.compute(self(x, *rest), y, stage)
        # Epoch-level values only: one name per metric everywhere (no _step/_epoch forks).
        self.log(metric_key(stage, LOSS), loss, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True, batch_size=len(y))  # fmt: skip
        return loss

    def log_metric(self, stage: str, name: str, metric) -> None:
        self.log(metric_key(stage, name), metric, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True)  # fmt: skip

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
