"""Refuse a bad configuration before any data is loaded or any run is opened.

Each rule names a config key once, with what it must be; the error says how
to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convrec.data.tasks import TASKS, check_validation_split
from convrec.errors import ConvrecError
from convrec.models import MODELS


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


def check_config(cfg: DictConfig) -> None:
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or "?"
        raise ConvrecError(f"config value {key} cannot be resolved ({err}); set it") from None
    TASKS.get(cfg.task.name)
    MODELS.get(cfg.model.name)
    for key, ok, requirement in RULES:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConvrecError(
                f"{key}={value!r} is invalid: it must be {requirement}; "
                f"pass {key}=<value> or fix it in conf/"
            )
    check_validation_split(cfg.task)
