"""One input (image, sequence or text) to one class label."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix

from convrec.lit.base import ACCURACY, LOSS, SupervisedModule, metric_key
from convrec.models.spec import IOSpec


class ClassificationModule(SupervisedModule):
    monitor = metric_key("val", ACCURACY)
    monitor_mode = "max"
    headline = ("accuracy", metric_key("test", ACCURACY), 100.0, True)  # percent
    history_keys = tuple(metric_key(s, m) for s in ("train", "val") for m in (LOSS, ACCURACY))

    def __init__(self, net: nn.Module, spec: IOSpec, optimizer, scheduler=None) -> None:
        super().__init__(net, optimizer, scheduler)
        self.loss_fn = nn.CrossEntropyLoss()
        self.test_confusion = MulticlassConfusionMatrix(spec.num_classes, validate_args=False)
        self._confusion: torch.Tensor | None = None

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        self.add_mean(stage, ACCURACY, (outputs.argmax(-1) == y).sum(), y.numel())
        if stage == "test":
            self.test_confusion.update(outputs, y)
        return self.loss_fn(outputs, y)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._confusion = self.test_confusion.compute().cpu()  # summed over DDP ranks
        self.test_confusion.reset()

    def confusion_matrix(self) -> torch.Tensor | None:
        return self._confusion
