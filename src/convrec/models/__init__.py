"""Plain nn.Modules, found by name. Every model is built as `Model(spec, **hparams)`.

A model class carries `family` (mlp | cnn | rnn | hybrid | scan), so the leaderboard
knows it without a second source of truth, and `accepts` (convrec.models.spec.Accepts): the
inputs and targets it takes, from which every (task, model) pair is allowed or refused.
"""

from __future__ import annotations

from torch import nn

from convrec.errors import ConvrecError
from convrec.models.spec import IOSpec
from convrec.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model", "convrec.models", "model")
# scan: recurrent models trained in parallel (minGRU, minLSTM, S4D: convrec.models.scan)
FAMILIES = ("mlp", "cnn", "rnn", "hybrid", "scan")


def fitting_models(spec: IOSpec) -> list[str]:
    """The models whose declared inputs and targets (`accepts`) fit a task of this spec."""
    return [name for name in MODELS.names() if MODELS.get(name).accepts.refusal(spec) is None]


def check_fits(model: str, spec: IOSpec, task: str = "this task") -> None:
    """Refuse a (task, model) pair the model's `accepts` rules out, naming the models that fit."""
    reason = MODELS.get(model).accepts.refusal(spec)
    if reason is not None:
        raise ConvrecError(f"model {model} cannot train on {task}: {reason}; models that fit: "
                           f"{', '.join(fitting_models(spec)) or 'none'}")  # fmt: skip


def build_model(name: str, spec: IOSpec, **hparams) -> nn.Module:
    check_fits(name, spec)
    cls = MODELS.get(name)
    try:
        return cls(spec, **hparams)
    except TypeError as err:  # an unknown or missing hyperparameter
        raise ConvrecError(f"model {name!r}: {err}; fix conf/model/{name}.yaml (net: ...)") from err


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
