"""Collect every run's metrics.json into one table beside the published numbers.

A run that never ran shows as missing, one that left no readable result as
failed; a reference whose model the lab did not run is still listed under its
task.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path

import pandas as pd

from convrec.compare.references import same_protocol
from convrec.compare.significance import TEST, ranks, tied_first, winning_family
from convrec.compare.time_to_accuracy import TARGET_RULE
from convrec.errors import ConvrecError
from convrec.protocol import describe
from convrec.results import read_metrics

COLUMNS = [
    "task", "model", "family", "metric", "value", "rank", "seeds", "value_mean", "value_std",
    "value_ci95", "values", "diverged", "reference", "delta", "reference_source",
    "reference_protocol",
    "baseline", "higher_is_better", "params", "train_seconds", "samples_per_second",
    "latency_ms", "latency_iqr_ms", "memory_mb", "epochs", "best_val", "other_metrics", "profile",
    "device",
    "precision", "protocol", "time_to_target", "target", "status", "mlflow_run_id",
]  # fmt: skip
SHOWN = [  # the columns of each task's table ("value": the mean ± the 95% CI over the seeds)
    "rank", "model", "family", "value", "seeds", "reference", "delta", "params", "train_seconds",
    "samples_per_second", "latency_ms", "memory_mb", "epochs", "time_to_target",
    "other_metrics", "status",
]  # fmt: skip


def collect(
    results: Path, runs: Iterable[Mapping[str, str]], references: pd.DataFrame | None = None
) -> pd.DataFrame:
    rows, protocols = [], {}
    for run in runs:
        metrics = _read_metrics(results / run["task"] / run["model"])
        if isinstance(metrics, dict):
            protocols[run["task"], run["model"]] = metrics.get("protocol")
            baseline = (metrics.get("baseline") or {}).get("value")
            other = other_metrics(metrics)
            protocol = describe(metrics["protocol"]) if metrics.get("protocol") else None
            rows.append({"seeds": 1, "diverged": 0, **metrics, "baseline": baseline,
                         "other_metrics": other, "protocol": protocol,
                         "status": "ok"})  # fmt: skip
        else:
            rows.append({"task": run["task"], "model": run["model"], "status": metrics})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    if references is not None and len(references):
        table = _beside_references(table, references, protocols)
    for column in ("seeds", "diverged"):  # counts, blank where there is no run
        table[column] = table[column].astype("Int64")
    return _ranked(table)


def _read_metrics(folder: Path) -> dict | str:
    """The run's metrics (convrec.results' contract), or why there are none: "missing"
    (never ran), "diverged" (every seed did), or "failed" (its folder exists but holds no
    readable, finite result)."""
    path = folder / "metrics.json"
    if not path.is_file():
        return "failed" if folder.is_dir() else "missing"
    try:
        metrics = read_metrics(path)
        if metrics["value"] is None and metrics.get("diverged"):
            return "diverged"
        return metrics if math.isfinite(float(metrics["value"])) else "failed"
    except (ValueError, KeyError, TypeError, ConvrecError):
        return "failed"


def task_protocol(group: pd.DataFrame) -> str:
    """The protocol a task's runs trained under, as a reader's line: one for all of them, or
    where they differ (a run left over from an older protocol), each run's."""
    runs = group[group["status"] == "ok"]
    described = runs["protocol"].dropna().unique()
    if len(described) == 1 and runs["protocol"].notna().all():
        return str(described[0])
    if not len(described):
        return "not recorded"
    each = "; ".join(f"{row.model}: {row.protocol}" for row in runs.fillna("not recorded")
                     .itertuples())  # fmt: skip
    return f"differs between runs, so they do not compare: {each}"


def other_metrics(metrics: Mapping) -> str:
    """The run's test metrics besides the headline and the loss, in percent ("der 3.4")."""
    skip = {metrics.get("metric_key"), "test/loss"}
    test = metrics.get("test", {})
    shown = [f"{key.split('/', 1)[1]} {100 * value:.2f}" for key, value in test.items()
             if key not in skip]  # fmt: skip
    return ", ".join(shown)


def _beside_references(
    table: pd.DataFrame, references: pd.DataFrame, protocols: Mapping[tuple, Mapping | None]
) -> pd.DataFrame:
    """Each run beside the published number for its model; a delta only where the run's
    protocol is the reference's (else "different protocol")."""
    matched = references.dropna(subset=["model"]).drop_duplicates(["task", "model"])
    table = table.drop(columns=["reference", "reference_source", "reference_protocol"]).merge(
        matched, on=["task", "model"], how="left"
    )
    same = [isinstance(ref, dict) and same_protocol(protocols.get((task, model)), ref)
            for task, model, ref in zip(table["task"], table["model"],
                                        table["reference_protocol"], strict=True)]  # fmt: skip
    table["delta"] = (table["value"] - table["reference"]).where(same)
    table["reference_protocol"] = [
        describe(ref) + ("" if ok else "; different protocol: no delta")
        if isinstance(ref, dict) else None
        for ref, ok in zip(table["reference_protocol"], same, strict=True)
    ]
    ran = set(zip(table["task"], table["model"], strict=True))
    unmatched = references[
        [(t, m) not in ran for t, m in zip(references["task"], references["model"], strict=True)]
    ]
    published = unmatched[unmatched["task"].isin(table["task"])].assign(status="published")
    published = published.assign(
        model=published["model"].fillna("(published)"),
        reference_protocol=published["reference_protocol"].map(describe),
    )
    table = pd.concat([table, published], ignore_index=True)
    return table.reindex(columns=COLUMNS)


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Best first within each task: descending accuracy, ascending loss or error."""
    lower = table.groupby("task")["higher_is_better"].transform(
        lambda s: s.dropna().eq(False).any()
    )
    key = table["value"].where(lower, -table["value"])
    order = (
        table.assign(_published=table["status"].eq("published"), _key=key)
        .sort_values(["task", "_published", "_key"], na_position="last")
        .index
    )
    table = table.loc[order].reset_index(drop=True)
    order = list(table.index)
    for _, group in table.groupby("task", sort=False):
        runs = group[group["status"].eq("ok") & group["value"].notna()]
        for slot, row in zip(runs.index, tied_first(runs).index, strict=True):
            order[slot] = row  # the runs tied with the best come right after it
    table = table.loc[order].reset_index(drop=True)
    table["rank"] = None
    for _, group in table.groupby("task", sort=False):
        runs = group[group["status"].eq("ok") & group["value"].notna()]
        table.loc[runs.index, "rank"] = ranks(runs)
    return table


def to_markdown(table: pd.DataFrame) -> str:
    lines = [
        "# Leaderboard",
        "",
        "Test-set headline metric of every run, best first per task, beside the published",
        "number for the same model where there is one (delta = ours - published);",
        "other_metrics: the run's other test metrics, in percent. samples_per_second: training",
        "throughput; latency_ms: inference on one test example (the median of timed calls after",
        "a warm-up; leaderboard.csv's latency_iqr_ms: their interquartile range); memory_mb: a",
        "training step's tensors (weights, gradients, optimizer state, activations saved for",
        "backward).",
        f"value: the mean ± the 95% confidence interval over the seeds. rank: {TEST}; a run",
        "the best one does not beat is ranked 1 (tied) and listed right after it, even below",
        "the mean of a run the best does beat (seeds spread wide can tie with the best).",
        "",
    ]
    for task, group in table.groupby("task", sort=True):
        runs = group[group["status"] != "published"]
        metric = runs["metric"].dropna().iloc[0] if runs["metric"].notna().any() else "metric"
        lower = runs["higher_is_better"].dropna().eq(False).any()
        unit = "%" if metric == "accuracy" else ("lower is better" if lower else "")
        lines += [f"## {task} ({metric}{', ' + unit if unit else ''})", ""]
        lines += [f"Protocol (every model): {task_protocol(group)}.", ""]
        if group["target"].notna().any():
            lines += [f"time_to_target: training seconds to {group['target'].dropna().iloc[0]} "
                      f"({TARGET_RULE}).", ""]  # fmt: skip
        lines.append("| " + " | ".join(SHOWN) + " |")
        lines.append("|" + "---|" * len(SHOWN))
        for _, row in group.iterrows():
            cells = (value_cell(row) if c == "value" else cell(row[c]) for c in SHOWN)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        baseline = runs["baseline"].dropna()
        if len(baseline):
            lines += [f"Trivial baseline: {cell(baseline.iloc[0])}.", ""]
        sources = group[["model", "reference", "reference_source", "reference_protocol"]]
        sources = sources.dropna(subset=["reference", "reference_source"])
        if len(sources):
            lines.append("Published numbers (protocol; a delta only under the same protocol):")
            for _, row in sources.iterrows():
                lines.append(f"- {row['model']}: {cell(row['reference'])}, "
                             f"{row['reference_source']}; {row['reference_protocol']}")  # fmt: skip
            lines.append("")
    return "\n".join(lines + family_lines(table))


def family_lines(table: pd.DataFrame) -> list[str]:
    """Which family wins each task: one whose best run beats the best run of every other
    family significantly, else a tie."""
    summary = family_summary(table)
    if summary.empty:
        return []
    lines = ["## Which family wins", "",
             f"A family wins a task when its best run beats every other family's best ({TEST}); "
             "otherwise the task is a tie.", ""]  # fmt: skip
    for task, group in summary.groupby("task", sort=True):
        bests = ", ".join(f"{r.family} {r.model} {cell(r.value)}" for r in group.itertuples())
        lines.append(f"- {task}: **{group['winner'].iloc[0]}** ({bests})")
    return [*lines, ""]


def value_cell(row: Mapping) -> str:
    """The headline as a reader wants it: the mean ± the 95% CI's half-width over the seeds,
    and how many seeds diverged (a row whose seeds all diverged says so, with no number)."""
    if row.get("status") == "diverged":
        return "diverged"
    shown = cell(row.get("value"))
    ci95 = row.get("value_ci95")
    if ci95 is not None and not pd.isna(ci95):
        shown += f" ± {cell(ci95)}"
    diverged, seeds = row.get("diverged"), row.get("seeds")
    if not pd.isna(diverged) and diverged:
        shown += f" ({int(diverged)} of {int(seeds)} seeds diverged)"
    return shown


def cell(value) -> str:
    if value is pd.NA:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return f"{value:,}"
    if isinstance(value, Real):
        if pd.isna(value):
            return "-"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return str(value)


def family_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The best finished run of each family on each task, one row per (task, family), with
    `relative`: its value as a percentage of the task's best (best / value where lower is
    better), so tasks with different metrics share one colour scale; with the task's direction
    (`higher_is_better`) and its `winner` (convrec.compare.significance)."""
    done = table[table["status"] == "ok"].dropna(subset=["value", "family"])
    rows = []
    for task, group in done.groupby("task", sort=True):
        lower = group["higher_is_better"].eq(False).any()
        best = group["value"].min() if lower else group["value"].max()
        tops = []
        for family, members in group.groupby("family", sort=True):
            top = members.loc[members["value"].idxmin() if lower else members["value"].idxmax()]
            value = float(top["value"])
            relative = 100 * (best / value if lower else value / best) if best and value else 0.0
            tops.append({"task": task, "family": family, "model": top["model"], "value": value,
                         "relative": relative, "values": top.get("values"),
                         "higher_is_better": not lower})  # fmt: skip
        tops.sort(key=lambda r: r["value"], reverse=not lower)
        winner = winning_family(pd.DataFrame(tops))
        rows += [{**top, "winner": winner} for top in tops]
    columns = ["task", "family", "model", "value", "relative", "values", "higher_is_better",
               "winner"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def pareto_front(cost: Iterable[float], value: Iterable[float], higher_is_better: bool) -> list:
    """Whether each run is on the front: no other run is at most as costly and strictly
    better, or strictly cheaper and at least as good."""
    points = list(zip(cost, value, strict=True))

    def better(a: float, b: float) -> bool:
        return a > b if higher_is_better else a < b

    def dominates(p: tuple, q: tuple) -> bool:
        no_worse = p[0] <= q[0] and not better(q[1], p[1])
        return no_worse and (p[0] < q[0] or better(p[1], q[1]))

    return [not any(dominates(p, q) for p in points) for q in points]
