"""Refuse a bad configuration before any data is loaded or any run is opened.

Each rule names a config key once, with what it must be; the error says how
to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convrec.data.contract import load_meta
from convrec.data.tasks import check_validation_split, loader_for
from convrec.errors import ConvrecError
from convrec.models import MODELS, check_fits
from convrec.models.spec import IOSpec


def _int_at_least(low: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _positive(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and v > 0


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


RULES: list[tuple[str, Callable[[object], bool], str]] = [
    ("seed", _int_at_least(0), "an integer >= 0"),
    ("num_workers", _int_at_least(0), "an integer >= 0"),
    ("task.batch_size", _int_at_least(1), "an integer >= 1"),
    ("trainer.max_epochs", _int_at_least(1), "an integer >= 1"),
    ("trainer.gradient_clip_val", _optional(_positive), "null or a number > 0"),
    ("optimizer.lr", _positive, "a number > 0"),
    ("task.select", lambda v: v in (None, "val", "last"), "val (best validation score) or last"),
]


# model.net keys that count something (units, channels, layers, a kernel's width): an integer
# >= 1, or a list of them (one per layer; empty for none)
SIZE_KEYS = ("embed_dim", "hidden_size", "kernel_size", "pool_size", "num_layers", "cell_hidden",
             "stride", "dilation", "groups", "g_hidden", "filters", "beam_size", "features",
             "channels", "hidden", "kernels", "kernel_sizes")  # fmt: skip


def _sizes(v: object) -> bool:
    values = list(v) if OmegaConf.is_list(v) or isinstance(v, list | tuple) else [v]
    return all(_int_at_least(1)(x) for x in values)


def _probability(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and 0 <= v < 1


def check_model_hparams(cfg: DictConfig) -> None:
    """The model's own hyperparameters by what their names say: a dropout is a probability
    in [0, 1) (1 would drop everything), a size is a positive integer."""
    net = cfg.model.get("net") or {}
    for key, value in net.items():
        if str(key).endswith("dropout") and not _probability(value):
            requirement = "a number in [0, 1)"
        elif key in SIZE_KEYS and not _sizes(value):
            requirement = "an integer >= 1 (or a list of them)"
        else:
            continue
        raise ConvrecError(
            f"model.net.{key}={value!r} is invalid: it must be {requirement}; pass "
            f"model.net.{key}=<value> or fix conf/model/{cfg.model.name}.yaml"
        )


def check_config(cfg: DictConfig) -> None:
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or "?"
        raise ConvrecError(f"config value {key} cannot be resolved ({err}); set it") from None
    loader_for(cfg.task)
    MODELS.get(cfg.model.name)
    for key, ok, requirement in RULES:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConvrecError(
                f"{key}={value!r} is invalid: it must be {requirement}; "
                f"pass {key}=<value> or fix it in conf/"
            )
    check_model_hparams(cfg)
    check_validation_split(cfg.task)


def check_pair(cfg: DictConfig, prepared: Path) -> IOSpec:
    """The task's spec, from its prepared meta.json (no data read yet), after refusing a model
    whose declared inputs and targets (`accepts`) rule the task out: one line naming the models
    that fit, before any data is loaded or any MLflow run is opened."""
    spec = IOSpec.from_meta(load_meta(prepared / cfg.task.name))
    check_fits(cfg.model.name, spec, f"task {cfg.task.name}")
    return spec
