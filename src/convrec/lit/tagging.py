"""A tag for every token (slot filling): cross-entropy over real tokens, entity-level F1.

The score is seqeval's: a slot counts as found only when its type and all its words
are right, so "new york" tagged B-origin O is a miss, not half a hit.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from convrec.lit.base import F1, LOSS, STAGES, SupervisedModule, metric_key
from convrec.models.spec import IOSpec
from convrec.targets import TARGET_PAD


class SlotF1(Metric):
    """Entity-level F1 over BIO tags (seqeval's default, conlleval-compatible mode).

    Entities can only be matched per sentence, so the states keep every real token's
    predicted and true tag, and each sentence's length; under DDP the states are
    concatenated across processes before the score is computed.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, tag_names: tuple[str, ...]) -> None:
        super().__init__()
        self.tag_names = list(tag_names)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("lengths", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """`logits` (N, T, K), `target` (N, T) with -1 on padding (right-padded)."""
        real = target != TARGET_PAD
        self.preds.append(logits.argmax(-1)[real])
        self.target.append(target[real])
        self.lengths.append(real.sum(1))

    def compute(self) -> torch.Tensor:
        from seqeval.metrics import f1_score  # with scikit-learn: only where a task tags

        lengths = dim_zero_cat(self.lengths).tolist()

        def sentences(state) -> list[list[str]]:
            tags = iter(self.tag_names[i] for i in dim_zero_cat(state).tolist())
            return [[next(tags) for _ in range(n)] for n in lengths]

        return torch.tensor(f1_score(sentences(self.target), sentences(self.preds)))


class TaggingModule(SupervisedModule):
    monitor = metric_key("val", F1)
    monitor_mode = "max"
    headline = ("f1", metric_key("test", F1), 100.0, True)  # percent
    history_keys = tuple(metric_key(s, m) for s in ("train", "val") for m in (LOSS, F1))

    def __init__(self, net: nn.Module, spec: IOSpec, optimizer, scheduler=None) -> None:
        super().__init__(net, optimizer, scheduler)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=TARGET_PAD)  # padding adds no loss
        self.f1 = nn.ModuleDict({f"{stage}_f1": SlotF1(spec.class_names) for stage in STAGES})

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        # Update only: the score is computed once per epoch (log_epoch).
        self.f1[f"{stage}_f1"].update(outputs.detach(), y)
        return self.loss_fn(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1))

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        return {F1: self.f1[f"{stage}_f1"]}
