"""Collect every run's metrics.json into one table; a run that left none shows as missing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path

import pandas as pd

COLUMNS = [
    "task", "model", "family", "metric", "value", "params", "train_seconds",
    "samples_per_second", "epochs", "best_val", "profile", "status", "mlflow_run_id",
]  # fmt: skip


def collect(results: Path, runs: Iterable[Mapping[str, str]]) -> pd.DataFrame:
    rows = []
    for run in runs:
        path = results / run["task"] / run["model"] / "metrics.json"
        if path.is_file():
            rows.append({**json.loads(path.read_text()), "status": "ok"})
        else:
            rows.append({"task": run["task"], "model": run["model"], "status": "missing"})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    return table.sort_values(["task", "value"], ascending=[True, False], na_position="last")


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["# Leaderboard", "", "Test-set headline metric of every run, best first per task.", ""]
    shown = [
        "model",
        "family",
        "value",
        "params",
        "train_seconds",
        "samples_per_second",
        "epochs",
        "status",
    ]
    for task, group in table.groupby("task", sort=True):
        metric = group["metric"].dropna().iloc[0] if group["metric"].notna().any() else "metric"
        lines += [f"## {task} ({metric}, %)", ""]
        lines.append("| " + " | ".join(shown) + " |")
        lines.append("|" + "---|" * len(shown))
        for _, row in group.iterrows():
            lines.append("| " + " | ".join(_cell(row[c]) for c in shown) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, Integral):
        return f"{value:,}"
    if isinstance(value, Real):
        if pd.isna(value):
            return "-"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return str(value)
