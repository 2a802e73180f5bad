"""What `dvc metrics show` and `dvc plots show` read: the lab's verdict in a few numbers (each
family's average rank across tasks, the tasks each family wins, the ties), so that `dvc metrics
show` and `dvc exp show` fit a 120-column terminal (every run's number is in
reports/leaderboard.csv), and one learning-curve file per task (long form: epoch, model,
value), which the template .dvc/plots/learning_curves.json draws as one line per model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from convrec.atomic import staged_dir, write_json
from convrec.compare.across_tasks import average_ranks, family_scores
from convrec.compare.leaderboard import family_summary
from convrec.compare.time_to_accuracy import curve_column


def write_metrics(table: pd.DataFrame, path: Path) -> None:
    """{"rank": {family: average rank}, "wins": {family: tasks won}, "ties": n[, "untested": n]}
    (convrec.compare.across_tasks, convrec.compare.significance)."""
    summary = family_summary(table)
    winners = summary.groupby("task")["winner"].first()
    ranks = average_ranks(family_scores(table))  # the three families, over the most tasks
    # the families ranked across tasks; the MLP (a baseline on three tasks) or the scan family
    # would add a column past 120 in `dvc exp show` (every family only where none is ranked;
    # the report has the scan family's wins and ranks)
    families = sorted(ranks.index) if len(ranks) else sorted(set(summary["family"]))
    metrics = {
        "rank": {f: round(float(r), 3) for f, r in ranks.items()},
        "wins": {family: int((winners == family).sum()) for family in families},
        "ties": int((winners == "tie").sum()),
    }
    # tasks whose best runs have one seed each (no test can decide them): a column only where
    # there are any, as with several seeds there are none (and `dvc exp show` fits 120 columns)
    if untested := int((winners == "untested").sum()):
        metrics["untested"] = untested
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
