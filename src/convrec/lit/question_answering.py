"""Image QA (Sort-of-CLEVR): classification, with accuracy also reported per question group.

Santoro et al. 2017 report relational and non-relational questions apart, since a model can
answer the second kind well and the first barely above the prior. The task names its
groups by a marker token (`IOSpec.question_groups`); the overall accuracy stays the headline.
A sample is an image with K questions: outputs (N, K, classes) and answers (N, K) are scored
as N * K answers.
"""

from __future__ import annotations

import torch
from torch import nn

from convrec.lit.base import ACCURACY
from convrec.lit.classification import ClassificationModule
from convrec.models.spec import IOSpec

SCORED = ("val", "test")  # per-group accuracy on held-out data only


def group_key(group: str) -> str:
    return f"{ACCURACY}_{group}"  # "acc_relational": logged as val/acc_relational, test/...


class QuestionAnsweringModule(ClassificationModule):
    def __init__(self, net: nn.Module, spec: IOSpec, optimizer, scheduler=None) -> None:
        super().__init__(net, spec, optimizer, scheduler)
        self.groups = dict(spec.question_groups)  # name -> marker token id
        self._question: torch.Tensor | None = None

    def _step(self, batch, stage: str) -> torch.Tensor:
        # compute() sees outputs and targets only; the group is read off the question.
        self._question = batch[1]
        return super()._step(batch, stage)

    def compute(self, outputs: torch.Tensor, y: torch.Tensor, stage: str) -> torch.Tensor:
        outputs, y = outputs.flatten(0, 1), y.flatten()
        loss = super().compute(outputs, y, stage)
        if stage in SCORED:
            question = self._question.flatten(0, 1)
            for group, token in self.groups.items():
                in_group = (question == token).any(dim=1)
                if in_group.any():  # a batch may hold no question of a group
                    hits = (outputs[in_group].argmax(-1) == y[in_group]).sum()
                    self.add_mean(stage, group_key(group), hits, int(in_group.sum()))
        return loss
