"""The compare stage: leaderboard (csv, md) and figures under reports/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from convrec.atomic import write_text
from convrec.compare.leaderboard import collect, to_markdown
from convrec.compare.plots import accuracy_vs_params
from convrec.compare.references import load_references


def write_reports(
    results: Path, runs: Iterable[Mapping[str, str]], reports: Path, task_conf: Path | None = None
) -> Path:
    """`task_conf` (conf/task) holds the published references; None leaves them out."""
    runs = list(runs)
    references = load_references(task_conf, [r["task"] for r in runs]) if task_conf else None
    table = collect(results, runs, references)
    write_text(reports / "leaderboard.csv", table.to_csv(index=False))
    write_text(reports / "leaderboard.md", to_markdown(table))
    accuracy_vs_params(table, reports / "figures" / "accuracy_vs_params.png")
    return reports
