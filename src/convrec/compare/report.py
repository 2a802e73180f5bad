"""The compare stage: leaderboard (csv, md) and figures under reports/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from convrec.atomic import write_text
from convrec.compare.leaderboard import collect, to_markdown
from convrec.compare.plots import accuracy_vs_params


def write_reports(results: Path, runs: Iterable[Mapping[str, str]], reports: Path) -> Path:
    table = collect(results, runs)
    write_text(reports / "leaderboard.csv", table.to_csv(index=False))
    write_text(reports / "leaderboard.md", to_markdown(table))
    accuracy_vs_params(table, reports / "figures" / "accuracy_vs_params.png")
    return reports
