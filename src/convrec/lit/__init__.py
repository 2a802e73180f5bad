"""LightningModules, one per kind of target; the task's meta.json says which one trains."""

from __future__ import annotations

from convrec.lit.base import SupervisedModule
from convrec.lit.classification import ClassificationModule
from convrec.lit.regression import RegressionModule
from convrec.lit.step_labels import StepLabelModule

MODULES: dict[str, type[SupervisedModule]] = {
    "class": ClassificationModule,
    "steps": StepLabelModule,
    "value": RegressionModule,
}
