"""Measurement experiments (the seeds' claims), found by name: `experiment=<name>` runs the
function a module here registers, with conf/experiment/<name>.yaml. Adding one is one Python
file plus one YAML file."""

from __future__ import annotations

from collections.abc import Callable

from convrec.registry import Registry

# fn(cfg, out, root) -> {"conclusion": str, "metrics": {name: float}, "figure": file name, ...}:
# it reads prepared data under `root` if it needs any, writes its tables and figures under
# `out` and says in one sentence what the numbers give.
EXPERIMENTS: Registry[Callable] = Registry("experiment", "convrec.experiments", "experiment")
