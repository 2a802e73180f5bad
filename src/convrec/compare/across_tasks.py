"""Across tasks: each family's average rank, and a critical-difference diagram.

A family's score on a task is its best run's mean; losses are negated so that higher is better
everywhere, and each task ranks the families (1 = best, ties share the average rank). Only
tasks where every family of the diagram has a run count, so each rank is over the same
contenders. The diagram (aeon's) joins families whose pairwise one-sided Wilcoxon signed-rank
tests, Holm-corrected, find no difference at `ALPHA`.

Two comparisons: the seeds' three families over every task where all three ran, and, where
the scan family (recurrent models trained as scans) ran, the four over the tasks where all
four did: fewer tasks, so the three keep their own, wider comparison.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from convrec.compare.leaderboard import family_summary
from convrec.figures import plt, save_png

FAMILIES = ("cnn", "rnn", "hybrid")  # what the lab compares (the MLP is a baseline on 3 tasks)
WITH_SCAN = (*FAMILIES, "scan")  # and the scan family, on the tasks it ran
ALPHA = 0.05


def family_scores(table: pd.DataFrame, families: tuple[str, ...] = FAMILIES) -> pd.DataFrame:
    """tasks x families (of `families` present): the best run's mean, higher is better, for
    the tasks where every one of those families has a run."""
    summary = family_summary(table)
    if summary.empty:
        return pd.DataFrame()
    present = [f for f in families if f in set(summary["family"])]
    signed = summary["value"].where(summary["higher_is_better"], -summary["value"])
    scores = summary.assign(value=signed).pivot(index="task", columns="family", values="value")
    return scores[present].dropna()


def comparisons(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Figure name -> the scores it ranks: the three families, and the four with the scan
    family where that has runs."""
    found = {"critical_difference": family_scores(table)}
    with_scan = family_scores(table, WITH_SCAN)
    if "scan" in with_scan.columns:
        found["critical_difference_scan"] = with_scan
    return found


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


def markdown(found: dict[str, pd.DataFrame]) -> list[str]:
    lines = []
    for name, scores in found.items():
        if scores.empty or scores.shape[1] < 2:
            continue
        ranks = ", ".join(f"{family} {rank:.2f}" for family, rank in average_ranks(scores).items())
        lines += [f"Average rank of each family's best run (1 = best): {ranks}; "
                  f"{coverage(scores)}. Critical difference: pairwise one-sided Wilcoxon "
                  f"signed-rank tests, Holm-corrected, at {ALPHA} (figure `{name}.png`).",
                  ""]  # fmt: skip
    return ["## Across tasks", "", *lines] if lines else []
