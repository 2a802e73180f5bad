"""Published numbers, read from each task's YAML (`references:`), with their sources.

Each entry names the lab's model that corresponds to the published one (or
null when none does, such as Maas et al.'s IMDB model), the number in the
task's headline unit, where it was published (paper and table), and the protocol it
was measured under (`protocol:`, in the lab's protocol fields: profile, T as seq_len,
train_examples, test_examples, archive, ...: convrec.protocol). A run is compared with it
(a delta) only when the run's protocol holds every one of those values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from convrec.errors import ConvrecError

COLUMNS = ["task", "model", "reference", "reference_source", "reference_protocol"]
REQUIRED = ("profile", "train_examples", "test_examples")  # at least; T as seq_len where set


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
            protocol = OmegaConf.to_container(entry.get("protocol") or {})
            if missing := [key for key in REQUIRED if key not in protocol]:
                raise ConvrecError(
                    f"{path}: the reference of {entry.get('model')} ({entry.source}) declares no "
                    f"{', '.join(missing)} in its protocol; add them under protocol: (the "
                    f"published setting, in the lab's protocol fields)"
                )
            model, value, source = entry.get("model"), float(entry.value), str(entry.source)
            values = (task, model, value, source, protocol)
            rows.append(dict(zip(COLUMNS, values, strict=True)))
    return pd.DataFrame(rows, columns=COLUMNS)


def same_protocol(run: Mapping | None, reference: Mapping) -> bool:
    """Whether a run was made under the reference's protocol: every value the reference
    declares is the run's too."""
    return bool(run) and all(str(run.get(key)) == str(value) for key, value in reference.items())
