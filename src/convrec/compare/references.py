"""Published numbers, read from each task's YAML (`references:`), with their sources.

Each entry names the lab's model that corresponds to the published one (or
null when none does, such as Maas et al.'s IMDB model), the number in the
task's headline unit, and where it was published (paper and table).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from convrec.errors import ConvrecError

COLUMNS = ["task", "model", "reference", "reference_source"]


def load_references(task_conf: Path, tasks: Iterable[str]) -> pd.DataFrame:
    rows = []
    for task in sorted(set(tasks)):
        path = task_conf / f"{task}.yaml"
        for entry in OmegaConf.load(path).get("references") or []:
            if entry.get("value") is None or not entry.get("source"):
                raise ConvrecError(
                    f"{path}: every reference needs a value and a source (paper, table); "
                    f"fix the entry {OmegaConf.to_container(entry)}"
                )
            model, value, source = entry.get("model"), float(entry.value), str(entry.source)
            rows.append(dict(zip(COLUMNS, (task, model, value, source), strict=True)))
    return pd.DataFrame(rows, columns=COLUMNS)
