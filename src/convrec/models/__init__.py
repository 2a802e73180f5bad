"""Plain nn.Modules, found by name. Every model is built as `Model(spec, **hparams)`.

A model class carries `family` (mlp | cnn | rnn | hybrid), so the leaderboard
knows it without a second source of truth.
"""

from __future__ import annotations

from torch import nn

from convrec.errors import ConvrecError
from convrec.models.spec import IOSpec
from convrec.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model", "convrec.models", "model")
FAMILIES = ("mlp", "cnn", "rnn", "hybrid")


def build_model(name: str, spec: IOSpec, **hparams) -> nn.Module:
    cls = MODELS.get(name)
    try:
        return cls(spec, **hparams)
    except TypeError as err:  # an unknown or missing hyperparameter
        raise ConvrecError(f"model {name!r}: {err}; fix conf/model/{name}.yaml (net: ...)") from err


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
