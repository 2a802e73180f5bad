"""What `dvc repro` trains, read from conf/pipeline.yaml: the runs listed one by one under `runs`,
and each task of your own listed under `train_sets` with every model of its input kind's set
(`model_sets`). dvc.yaml expands the same two lists (a `train` stage per run, a `train_<kind>`
matrix stage per task and model of a set); compare and the tests read them through here.
"""

from __future__ import annotations

from collections.abc import Mapping

from convrec.errors import ConvrecError


def pipeline_runs(pipeline: Mapping) -> list[dict[str, str]]:
    """Every (task, model) the pipeline trains: the listed runs first, then the sets' runs,
    task by task. (A pair both listed and in a set would be two stages writing one folder,
    which DVC refuses.)"""
    runs = [{"task": str(run["task"]), "model": str(run["model"])}
            for run in (pipeline.get("runs") or {}).values()]  # fmt: skip
    sets = pipeline.get("model_sets") or {}
    for kind, tasks in (pipeline.get("train_sets") or {}).items():
        if tasks and kind not in sets:
            raise ConvrecError(
                f"conf/pipeline.yaml: train_sets.{kind} names no model set; use one of "
                f"{', '.join(sets)} (model_sets), or list the runs under `runs`"
            )
        for task in tasks or []:
            runs += [{"task": str(task), "model": str(model)} for model in sets[kind]]
    return runs
