"""Across tasks: each family's average rank, and a critical-difference diagram.

A family's score on a task is its best run's mean; losses are negated so that higher is better
everywhere, and each task ranks the families (1 = best, ties share the average rank). Only
tasks where every family of the diagram has a run count, so each rank is over the same
contenders. The diagram (aeon's) joins families whose pairwise one-sided Wilcoxon signed-rank
tests, Holm-corrected, find no difference at `ALPHA`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from convrec.compare.leaderboard import family_summary
from convrec.figures import plt, save_png

FAMILIES = ("cnn", "rnn", "hybrid")  # what the lab compares (the MLP is a baseline on 3 tasks)
ALPHA = 0.05


def family_scores(table: pd.DataFrame) -> pd.DataFrame:
    """tasks x families (of FAMILIES present): the best run's mean, higher is better, for the
    tasks where every one of those families has a run."""
    summary = family_summary(table)
    if summary.empty:
        return pd.DataFrame()
    families = [f for f in FAMILIES if f in set(summary["family"])]
    signed = summary["value"].where(summary["higher_is_better"], -summary["value"])
    scores = summary.assign(value=signed).pivot(index="task", columns="family", values="value")
    return scores[families].dropna()


def average_ranks(scores: pd.DataFrame) -> pd.Series:
    """Each family's mean rank; empty where no task has a run of every family."""
    if scores.empty:
        return pd.Series(dtype=float)
    return scores.rank(axis=1, ascending=False).mean().sort_values()


def coverage(scores: pd.DataFrame) -> str:
    return (f"families {', '.join(scores.columns)} over the {len(scores)} tasks where each has a "
            f"run ({', '.join(scores.index)}); losses ranked lower-is-better")  # fmt: skip


def critical_difference(scores: pd.DataFrame, path: Path) -> bool:
    """Draw the diagram; False where there is too little to test (fewer than 2 families or
    5 tasks: a Wilcoxon test on fewer pairs cannot reach p < 0.05)."""
    if scores.shape[1] < 2 or len(scores) < 5:
        return False
    from aeon.visualisation import plot_critical_difference  # aeon loads in seconds

    fig, _ = plot_critical_difference(scores.to_numpy(), list(scores.columns), alpha=ALPHA,
                                      test="wilcoxon", correction="holm")  # fmt: skip
    save_png(fig, path)
    plt.close(fig)
    return True


def markdown(scores: pd.DataFrame) -> list[str]:
    if scores.empty or scores.shape[1] < 2:
        return []
    ranks = ", ".join(f"{family} {rank:.2f}" for family, rank in average_ranks(scores).items())
    return ["## Across tasks", "",
            f"Average rank of each family's best run (1 = best): {ranks}; {coverage(scores)}. "
            f"Critical difference: pairwise one-sided Wilcoxon signed-rank tests, Holm-corrected, "
            f"at {ALPHA} (figure `critical_difference.png`).", ""]  # fmt: skip
