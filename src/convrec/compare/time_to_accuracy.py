"""Time to accuracy: each run's validation metric against its training seconds, and the seconds
each model needed to reach its task's target.

A task's target is set by its best run: 95% of the best validation value any run of the task
reached (an accuracy, or an F1), or 1.5 times the lowest validation loss. A run's seconds to
target are the training seconds (validation passes excluded: history.csv's `train_seconds`,
summed) until the end of the first epoch at or past the target, averaged over the seeds that
reached it; a run none of whose seeds reached it shows "not reached". Tasks without a
validation split have no curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from convrec.figures import plt, save_png
from convrec.results import run_file, seed_folders

SHARE = 0.95  # of the best validation accuracy (higher is better)
LOSS_FACTOR = 1.5  # times the lowest validation loss (lower is better)
TARGET_RULE = (
    f"target: {SHARE:.0%} of the best validation value any run of the task reached, or "
    f"{LOSS_FACTOR}x its lowest validation loss; seconds of training (validation excluded) to "
    "the first epoch at the target, averaged over the seeds that reached it"
)


def curve_column(history: pd.DataFrame) -> str | None:
    """The validation column a curve shows: the first val/ metric besides the loss, else the
    loss."""
    columns = [c for c in history.columns if c.startswith("val/")]
    metrics = [c for c in columns if c != "val/loss"]
    return (metrics or columns or [None])[0]


def seed_histories(folder: Path) -> list[pd.DataFrame]:
    """Every seed's history.csv of a results folder (a single run: its own)."""
    paths = [f / "history.csv" for f in seed_folders(folder) if (f / "history.csv").is_file()]
    if not paths and (single := run_file(folder, "history.csv")) is not None:
        paths = [single]
    histories = [pd.read_csv(path) for path in paths]
    return [h for h in histories if "train_seconds" in h]  # (written by every training run)


def _curve(history: pd.DataFrame, column: str) -> pd.DataFrame:
    rows = history.dropna(subset=[column])
    return pd.DataFrame({"seconds": history["train_seconds"].cumsum().loc[rows.index],
                         "value": rows[column]})  # fmt: skip


def analyse(results: Path, table: pd.DataFrame, folder: Path) -> tuple[dict, dict, dict]:
    """(task, model) -> seconds to target (None: not reached), task -> target description,
    task -> figure, for the tasks whose runs have validation curves."""
    done = table[table["status"] == "ok"]
    seconds, targets, figures = {}, {}, {}
    for task, group in done.groupby("task", sort=True):
        runs = {model: seed_histories(results / task / model) for model in group["model"]}
        runs = {model: h for model, h in runs.items() if h}
        column = next((c for hs in runs.values() for h in hs if (c := curve_column(h))), None)
        if column is None or all(h[column].isna().all() for hs in runs.values() for h in hs):
            continue  # no validation split
        higher = column != "val/loss"
        curves = {m: [_curve(h, column) for h in hs if column in h] for m, hs in runs.items()}
        values = np.concatenate([c["value"].to_numpy() for cs in curves.values() for c in cs])
        target = SHARE * values.max() if higher else LOSS_FACTOR * values.min()
        targets[task] = f"{column} {'>=' if higher else '<='} {target:.4g}"
        for model, model_curves in curves.items():
            reached = [c.loc[(c["value"] >= target) if higher else (c["value"] <= target),
                             "seconds"].min() for c in model_curves]  # fmt: skip
            reached = [r for r in reached if not pd.isna(r)]
            seconds[task, model] = float(np.mean(reached)) if reached else None
        figures[task] = folder / f"time_to_accuracy_{task}.png"
        _figure(task, column, curves, target, figures[task])
    return seconds, targets, figures


def _figure(task: str, column: str, curves: Mapping[str, list[pd.DataFrame]], target: float,
            path: Path) -> None:  # fmt: skip
    """A line per model (the seeds' mean by epoch), the seeds' range shaded."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for model, model_curves in sorted(curves.items()):
        epochs = min(len(c) for c in model_curves)
        x = np.mean([c["seconds"].to_numpy()[:epochs] for c in model_curves], axis=0)
        ys = np.array([c["value"].to_numpy()[:epochs] for c in model_curves])
        (line,) = ax.plot(x, ys.mean(axis=0), marker=".", label=model)
        if len(ys) > 1:
            ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), alpha=0.2, color=line.get_color())
    ax.axhline(target, color="black", linestyle="--", linewidth=1, label="target")
    ax.set_xlabel("training seconds (validation excluded)")
    ax.set_ylabel(column)
    ax.set_title(f"{task}: validation {column.split('/', 1)[1]} against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path)
