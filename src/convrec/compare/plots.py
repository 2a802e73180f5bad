"""Figures a person would rather look at than read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from convrec.compare.leaderboard import family_summary, pareto_front
from convrec.compare.time_to_accuracy import curve_column
from convrec.figures import plt, save_png

FAMILY_COLOURS = {"mlp": "tab:gray", "cnn": "tab:blue", "rnn": "tab:orange", "hybrid": "tab:green",
                  "scan": "tab:purple"}  # fmt: skip
COSTS = {"params": "trainable parameters", "train_seconds": "training time (s)"}


def metric_vs_cost(table: pd.DataFrame, cost: str, path: Path) -> None:
    """Test metric against `cost` (a COSTS column), per task, the Pareto front drawn: the
    runs no other run beats at the same or lower cost."""
    done = table[(table["status"] == "ok") & table[cost].gt(0)]
    tasks = sorted(done["task"].unique())
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes.flat, tasks, strict=False):
        group = done[done["task"] == task]
        lower = group["higher_is_better"].eq(False).any()
        for family, members in group.groupby("family"):
            ax.scatter(members[cost], members["value"], s=60, label=family,
                       color=FAMILY_COLOURS.get(family, "black"))  # fmt: skip
        for _, row in group.iterrows():
            ax.annotate(row["model"], (row[cost], row["value"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)  # fmt: skip
        front = group[pareto_front(group[cost], group["value"], not lower)].sort_values(cost)
        ax.step(front[cost], front["value"], where="post", color="black", alpha=0.4,
                linestyle="--", label="Pareto front")  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
        ax.set_xlabel(COSTS[cost])
        metric = group["metric"].iloc[0]
        if lower:  # losses and errors span decades
            ax.set_yscale("log")
            ax.set_ylabel(f"test {metric} (lower is better)")
        else:
            ax.set_ylabel(f"test {metric} (%)")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Test metric vs {COSTS[cost]}, per task")
    _save(fig, path)


def family_matrix(table: pd.DataFrame, path: Path) -> None:
    """Tasks x families: the best model of each family per task, coloured by its share of
    the task's best result, so which family wins where is one picture."""
    summary = family_summary(table)
    tasks = sorted(summary["task"].unique())
    families = [f for f in FAMILY_COLOURS if f in set(summary["family"])]
    families += sorted(set(summary["family"]) - set(families))
    grid = np.full((len(tasks), len(families)), np.nan)
    fig, ax = plt.subplots(figsize=(2.2 * len(families) + 3, 0.55 * len(tasks) + 1.8))
    for _, row in summary.iterrows():
        i, j = tasks.index(row["task"]), families.index(row["family"])
        grid[i, j] = row["relative"]
        colour = "white" if row["relative"] < 80 else "black"
        ax.text(j, i, f"{row['model']}  {row['value']:.3g}", ha="center", va="center",
                fontsize=8, color=colour)  # fmt: skip
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=50, vmax=100,
                      aspect="auto")  # fmt: skip
    winners = summary.groupby("task")["winner"].first()
    ax.set_yticks(range(len(tasks)), [f"{t} ({winners[t]})" for t in tasks])
    ax.set_xticks(range(len(families)), families)
    ax.xaxis.tick_top()
    fig.colorbar(image, ax=ax, label="% of the task's best result (blank: not run)")
    ax.set_title("Best model of each family per task: model and test metric\n"
                 "(the winning family, or tie: no family's best beats all others' significantly)",
                 pad=24)  # fmt: skip
    _save(fig, path)


def learning_curves(histories: Mapping[tuple[str, str], pd.DataFrame], path: Path) -> None:
    """Validation metric per epoch, one panel per task, one line per model. `histories`
    maps (task, model) to a run's history.csv."""
    tasks = sorted({task for task, _ in histories})
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes.flat, tasks, strict=False):
        column = None
        for (run_task, model), history in sorted(histories.items()):
            if run_task != task:
                continue
            column = curve_column(history)
            if column:
                ax.plot(history["epoch"], history[column], marker=".", label=model)
        ax.set_xlabel("epoch")
        ax.set_ylabel(column or "no validation metric")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Learning curves (validation), per task")
    _save(fig, path)


def confusion_matrices(matrices: Mapping[str, pd.DataFrame], task: str, path: Path) -> None:
    """One panel per model: its test confusion matrix (rows: the true class), each row in
    percent of that class, so classes of different sizes read alike."""
    fig, axes = _grid(len(matrices))
    for ax, (model, counts) in zip(axes.flat, sorted(matrices.items()), strict=False):
        totals = counts.sum(axis=1).replace(0, np.nan)
        percent = counts.div(totals, axis=0) * 100
        ax.imshow(percent.to_numpy(dtype=float), cmap="Blues", vmin=0, vmax=100)
        accuracy = 100 * np.trace(counts.to_numpy()) / max(1, counts.to_numpy().sum())
        ax.set_title(f"{model} ({accuracy:.1f}% correct)")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        names = [str(c) for c in counts.columns]
        if len(names) <= 12:  # beyond that, labels and numbers would overlap
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            for (i, j), value in np.ndenumerate(percent.to_numpy(dtype=float)):
                if value >= 1:
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if value > 60 else "black")  # fmt: skip
    fig.suptitle(f"{task}: test confusion matrices (row percent)")
    _save(fig, path)


def _grid(panels: int):
    cols = min(3, max(1, panels))
    rows = math.ceil(max(1, panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    return fig, axes


def _save(fig, path: Path) -> None:
    save_png(fig, path, top=0.98)  # keep the first row's titles clear of the suptitle
