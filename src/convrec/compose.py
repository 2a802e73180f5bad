"""Compose a config of conf/ from code (an experiment that trains through the lab's own
training path), inside a Hydra app or outside one (tests, a worker process)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig


def compose_config(conf_dir: Path, name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """<conf_dir>/<name>.yaml with `overrides`, as `pipelines/<name>.py` would compose it.
    Inside a Hydra app (a stage), its own search path is used: the same conf/."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
