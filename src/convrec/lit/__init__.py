"""LightningModules, one per kind of target; the task's meta.json says which one trains."""

from __future__ import annotations

from convrec.lit.base import SupervisedModule
from convrec.lit.classification import ClassificationModule
from convrec.lit.question_answering import QuestionAnsweringModule
from convrec.lit.regression import RegressionModule
from convrec.lit.sequence import SequenceModule
from convrec.lit.step_labels import StepLabelModule
from convrec.lit.tagging import TaggingModule
from convrec.models.spec import IOSpec

MODULES: dict[str, type[SupervisedModule]] = {
    "class": ClassificationModule,
    "steps": StepLabelModule,
    "value": RegressionModule,
    "tags": TaggingModule,
    "sequence": SequenceModule,
}


def module_for(spec: IOSpec) -> type[SupervisedModule]:
    """The LightningModule that trains a task: by its target kind; image QA with question
    groups (Sort-of-CLEVR) also scores each group."""
    if spec.question_groups:
        return QuestionAnsweringModule
    return MODULES[spec.target_kind]
