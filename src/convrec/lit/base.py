"""What every LightningModule of the lab shares: the batch layout, logging and optimisation.

Subclasses (one per kind of target) say which loss and metrics they compute,
which metric picks the best checkpoint, and which one the leaderboard shows.

Every value is an epoch value, and it is logged once per epoch: a step only adds to running
sums (the loss, an accuracy) and updates the metric objects that need more than a sum.
Lightning's `self.log` cost ~1 ms a call on a CPU (it moves its result record to the value's
device each time), two calls a step, which was a fifth of a small MLP's training step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torchmetrics import Metric

from convrec.errors import ConvrecError, Diverged

# Every metric name used by checkpoints, history, MLflow and the leaderboard comes from here.
LOSS = "loss"
ACCURACY = "acc"
F1 = "f1"  # entity-level F1 of slot filling
STAGES = ("train", "val", "test")
# Lightning's hooks around each optimizer step (convrec.lit.base.SupervisedModule.direct_steps)
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


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
        # The step is written out in training_step (Lightning's manual optimization): the
        # automatic loop's closure, precision and hook layers cost ~1 ms a step on a CPU,
        # a sixth of a small MLP's step. Clipping is then ours too (trainer's must be None).
        self.automatic_optimization = False
        self.gradient_clip_val: float | None = None
        self._hooked_steps = float("inf")  # steps left to take through Lightning's hooks
        self._sums: dict[tuple[str, str], torch.Tensor] = {}  # (stage, name) -> sum
        self._counts: dict[tuple[str, str], int] = {}  # (stage, name) -> samples in the sum

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
        self.add_mean(stage, LOSS, loss.detach() * len(y), len(y))
        return loss

    def add_mean(self, stage: str, name: str, total: torch.Tensor, count: int) -> None:
        """Add to a value that is a mean over the epoch's samples (the loss, an accuracy):
        `total` summed over `count` samples, kept on the device (no sync) until the epoch
        ends. A tensor sum costs a fraction of a torchmetrics update."""
        key = (stage, name)
        previous = self._sums.get(key)
        self._sums[key] = total if previous is None else previous + total
        self._counts[key] = self._counts.get(key, 0) + count

    def running_mean(self, stage: str, name: str) -> float:
        """This process's mean so far in the epoch (what `log_epoch` will reduce and log)."""
        return float(self._sums[(stage, name)]) / self._counts[(stage, name)]

    def log_epoch(self, stage: str) -> None:
        """Log the stage's means (sample-weighted over every process) and its metric objects,
        then start the next epoch from zero."""
        for key in [key for key in self._sums if key[0] == stage]:
            total, count = self._sums.pop(key), self._counts.pop(key)
            sums = torch.stack([total.float(), total.new_tensor(float(count))])
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            self.log_metric(stage, key[1], sums[0] / sums[1].clamp(min=1))
        for name, metric in self.epoch_metrics(stage).items():
            if metric.update_count:  # nothing to score in an epoch: no value rather than 0
                self.log_metric(stage, name, metric.compute())
            metric.reset()

    def log_metric(self, stage: str, name: str, value: torch.Tensor) -> None:
        # batch_size: one value an epoch, nothing to weigh (Lightning would search the batch)
        self.log(metric_key(stage, name), value, on_step=False, on_epoch=True,
                 prog_bar=True, sync_dist=True, batch_size=1)  # fmt: skip

    def training_step(self, chunk: list, chunk_idx: int) -> torch.Tensor:
        """One optimizer step per batch of the chunk (convrec.data.datamodule.BatchChunks)."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        for batch in chunk:
            loss = self._step(batch, "train")
            optimizer.zero_grad(set_to_none=True)
            if self._hooked_steps > 0:
                self._hooked_steps -= 1
                self.manual_backward(loss)
                self._clip(optimizer)
                optimizer.step()  # Lightning counts it in global_step
            else:
                loss.backward()
                self._clip(optimizer)
                self._direct_step(optimizer)
            if scheduler is not None:
                scheduler.step()  # every step: the schedules (one-cycle) count steps
        # Once a chunk: the check reads the running loss back from the device (a
        # synchronisation on a GPU), and the sum carries any step that was not finite.
        self.check_finite("train")
        # The training epoch's values are logged at its last step rather than in
        # on_train_epoch_end, which Lightning calls after the callbacks' (EpochHistory reads
        # them there).
        if chunk_idx + 1 == self.trainer.num_training_batches:
            self.log_epoch("train")
        return loss

    def _clip(self, optimizer: LightningOptimizer) -> None:
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val,
                                gradient_clip_algorithm="norm")  # fmt: skip

    @staticmethod
    def _direct_step(optimizer: LightningOptimizer) -> None:
        """The optimizer's own step, counted in global_step as Lightning's step counts it (its
        manual loop's callbacks on the wrapper), without the precision plugin's closure and
        the on_before_optimizer_step fan that nothing here listens to."""
        optimizer._on_before_step()
        optimizer.optimizer.step()
        optimizer._on_after_step()

    def on_train_start(self) -> None:
        self._hooked_steps = 1 if self.direct_steps() else float("inf")

    def direct_steps(self) -> bool:
        """Whether this fit's steps may call backward and the optimizer directly after its
        first. Lightning's manual_backward and optimizer.step fan out to every callback's
        and the module's step hooks (STEP_HOOKS) and wrap the step in a closure: ~0.2 ms a
        step on a CPU, a twentieth of a small MLP's step, when no one listens. They are
        taken where they do more: several processes (DDP's gradient hooks), a gradient scaler
        (16-bit mixed precision), or a hook that acts. The fit's first step always takes them:
        callbacks may ask for that one only (`first_step_only`; convrec.costs.TrainingMemory
        measures its activations)."""
        trainer = self.trainer
        plugin = trainer.precision_plugin
        plain = type(plugin) is Precision or (
            type(plugin) is MixedPrecision and plugin.scaler is None
        )
        if trainer.world_size != 1 or not plain:
            return False
        if any(is_overridden(hook, self, L.LightningModule) for hook in STEP_HOOKS):
            return False
        return all(getattr(callback, "first_step_only", False) for callback in trainer.callbacks
                   if any(is_overridden(hook, callback, L.Callback) for hook in STEP_HOOKS))

    def check_finite(self, stage: str) -> None:
        """Stop a run whose loss became NaN or infinite: the running sum carries any such step."""
        total = self._sums.get((stage, LOSS))
        if total is not None and not bool(torch.isfinite(total)):
            epoch, step = self.trainer.current_epoch + 1, self.trainer.global_step
            raise Diverged(f"the {stage} loss is not finite at epoch {epoch}, step {step}")

    def validation_step(self, chunk: list, chunk_idx: int) -> None:
        for batch in chunk:  # a chunk of batches, as in training
            self._step(batch, "val")

    def test_step(self, chunk: list, chunk_idx: int) -> None:
        for batch in chunk:
            self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.check_finite("val")
        self.log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            # Lightning counts its calls, chunks of batches (it sets the loader up to count
            # them); the schedule counts optimizer steps: one a batch
            chunks = int(self.trainer.estimated_stepping_batches)
            loader = self.trainer.train_dataloader
            kwargs["total_steps"] = steps = chunks // len(loader) * loader.batches
            # one-cycle's warm-up and annealing phases each need more than one step (else
            # torch divides by zero at the first step): a user's small dataset can be that short
            warmup = getattr(self.scheduler_factory, "keywords", {}).get("pct_start")
            if warmup is not None and min(warmup, 1 - warmup) * steps <= 1:
                raise ConvrecError(
                    f"the run has {steps} optimizer steps in all, too few for the one-cycle "
                    f"learning-rate schedule (pct_start={warmup}); lower task.batch_size, raise "
                    "trainer.max_epochs, or give the task more training examples"
                )
        scheduler = self.scheduler_factory(optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
