"""What every LightningModule of the lab shares: the batch layout, logging and optimisation.

Subclasses (one per kind of target) say which loss and metrics they compute,
which metric picks the best checkpoint, and which one the leaderboard shows.

Every value is an epoch value, and it is logged once per epoch: a step only adds to the
loss's running sum and updates the metric objects. Lightning's `self.log` cost ~1 ms a call
on a CPU (it moves its result record to the value's device each time), two calls a step,
which was a fifth of a small MLP's training step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

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
        self._loss_sums: dict[str, torch.Tensor] = {}  # stage -> sum of loss * batch size
        self._loss_counts: dict[str, int] = {}

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

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        """The metric objects `compute` updates in `stage`, by name: computed over the whole
        epoch (and every process), logged and reset when the epoch ends."""
        return {}

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, *rest, y = batch
        loss = self.compute(self(x, *rest), y, stage)
        self.add_loss(stage, loss, len(y))
        return loss

    def add_loss(self, stage: str, loss: torch.Tensor, count: int) -> None:
        """Add a batch's mean loss to the epoch's sum, on the loss's device (no sync)."""
        value = loss.detach() * count
        previous = self._loss_sums.get(stage)
        self._loss_sums[stage] = value if previous is None else previous + value
        self._loss_counts[stage] = self._loss_counts.get(stage, 0) + count

    def log_epoch(self, stage: str) -> None:
        """Log the stage's epoch loss (the sample-weighted mean over every process) and its
        metrics, then start the next epoch from zero."""
        total, count = self._loss_sums.pop(stage, None), self._loss_counts.pop(stage, 0)
        if total is not None:
            sums = torch.stack([total.float(), total.new_tensor(float(count))])
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            self.log_metric(stage, LOSS, sums[0] / sums[1])
        for name, metric in self.epoch_metrics(stage).items():
            if metric.update_count:  # a question group may have no question in an epoch
                self.log_metric(stage, name, metric.compute())
            metric.reset()

    def log_metric(self, stage: str, name: str, value: torch.Tensor) -> None:
        self.log(metric_key(stage, name), value, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True)  # fmt: skip

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        # The training epoch's values are logged at its last step rather than in
        # on_train_epoch_end, which Lightning calls after the callbacks' (EpochHistory reads
        # them there). num_training_batches counts limit_train_batches in.
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.log_epoch("train")
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch("test")

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
