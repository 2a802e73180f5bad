"""Which differences the seeds support, and which are ties.

Two runs differ when Welch's two-sided t-test on their seeds' headline values (unequal
variances) gives p < 0.05. Where both runs' seeds agree exactly (zero variance on both sides)
the test is undefined: they differ when their means differ at all, and tie when they are equal.
A run with fewer than two seeds cannot be tested: its order is shown, marked untested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
TEST = (
    f"Welch's two-sided t-test on the seeds' values at p < {ALPHA} (with zero variance on both "
    "sides: different means differ, equal ones tie; fewer than 2 seeds: untested)"
)


def differs(a: Sequence[float], b: Sequence[float]) -> bool | None:
    """Whether two runs' seed values differ significantly; None where a run has fewer than
    two seeds."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
        return bool(a.mean() != b.mean())
    return bool(stats.ttest_ind(a, b, equal_var=False).pvalue < ALPHA)


def seed_values(row) -> list[float]:
    """A leaderboard row's seed values: the aggregate's `values`, or a single run's value."""
    values = row.get("values")
    if isinstance(values, list | tuple):
        return [float(v) for v in values]
    return [] if pd.isna(row.get("value")) else [float(row["value"])]


def tied_first(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of one task (best first) with those the best does not beat significantly moved up
    to just below it, each group in its own order. Significance is not transitive: a run of
    widely spread seeds can tie with the best while one of a higher mean is beaten; read down,
    the ranks then never go back to 1."""
    if len(runs) < 2:
        return runs
    best = seed_values(runs.iloc[0])
    tied = [differs(seed_values(row), best) is False for _, row in runs.iterrows()]
    tied[0] = True
    return pd.concat([runs[tied], runs[[not t for t in tied]]])


def ranks(runs: pd.DataFrame) -> list[str]:
    """The rank of each run of one task (rows in tied_first's order): its place, "1 (tied)"
    for a run the best does not beat significantly, and "(untested)" where one side has one
    seed."""
    labels: list[str] = []
    best = None
    for place, (_, row) in enumerate(runs.iterrows(), start=1):
        if best is None:
            best = seed_values(row)
            labels.append("1")
            continue
        verdict = differs(seed_values(row), best)
        if verdict is None:
            labels.append(f"{place} (untested)")
        else:
            labels.append(f"{place}" if verdict else "1 (tied)")
    return labels


def winning_family(bests: pd.DataFrame) -> str:
    """The family whose best run beats the best run of every other family significantly, or
    "tie" (`bests`: one row per family, best first); "untested" where a test cannot be made."""
    rows = [row for _, row in bests.iterrows()]
    if len(rows) < 2:
        return str(rows[0]["family"]) if rows else "tie"
    verdicts = [differs(seed_values(rows[0]), seed_values(other)) for other in rows[1:]]
    if any(v is None for v in verdicts):
        return "untested"
    return str(rows[0]["family"]) if all(verdicts) else "tie"
