"""What `dvc metrics show` and `dvc plots show` read: every run's headline metric in one
file, and one learning-curve file per task (long form: epoch, model, value), which the
template .dvc/plots/learning_curves.json draws as one line per model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from convrec.atomic import staged_dir, write_json
from convrec.compare.plots import curve_column


def write_metrics(table: pd.DataFrame, path: Path) -> None:
    """{task: {model: headline value}} for every finished run."""
    done = table[table["status"] == "ok"]
    metrics: dict[str, dict[str, float]] = {}
    for row in done.itertuples():
        metrics.setdefault(row.task, {})[row.model] = float(row.value)
    write_json(path, metrics)


def write_curves(histories: Mapping[tuple[str, str], pd.DataFrame], folder: Path) -> None:
    """<folder>/<task>.csv: each model's validation metric per epoch (the column
    `curve_column` picks, named in `metric`)."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for (task, model), history in sorted(histories.items()):
        column = curve_column(history)
        if column:
            frames.setdefault(task, []).append(pd.DataFrame({
                "epoch": history["epoch"], "model": model, "metric": column,
                "value": history[column],
            }).dropna())  # fmt: skip
    with staged_dir(folder) as staged:
        for task, parts in frames.items():
            pd.concat(parts).to_csv(staged / f"{task}.csv", index=False)
