"""The compare stage: leaderboard (csv, md), figures, the self-contained index.html and what
`dvc metrics show` and `dvc plots show` read (metrics.json, curves/), under reports/."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from convrec.atomic import write_bytes, write_text
from convrec.compare.across_tasks import average_ranks, comparisons, coverage, critical_difference
from convrec.compare.across_tasks import markdown as across_tasks_markdown
from convrec.compare.claims import claims_markdown, load_claims
from convrec.compare.dvc_views import write_curves, write_metrics
from convrec.compare.html import render
from convrec.compare.leaderboard import collect, to_markdown
from convrec.compare.plots import (
    confusion_matrices,
    family_matrix,
    learning_curves,
    metric_vs_cost,
)
from convrec.compare.provenance import provenance
from convrec.compare.references import load_references
from convrec.compare.time_to_accuracy import TARGET_RULE
from convrec.compare.time_to_accuracy import analyse as time_to_accuracy
from convrec.results import run_file


def write_reports(
    results: Path,
    runs: Iterable[Mapping[str, str]],
    reports: Path,
    task_conf: Path | None = None,
    root: Path | None = None,
    experiments: Iterable[str] = (),
) -> Path:
    """`task_conf` (conf/task) holds the published references; None leaves them out. `root`
    is the project the report states its commit and data hashes from (results' parent by
    default). `experiments` names the measurement experiments whose summaries
    (results/experiments/<name>) get a report section each."""
    runs = list(runs)
    references = load_references(task_conf, [r["task"] for r in runs]) if task_conf else None
    table = collect(results, runs, references)
    figures_dir = reports / "figures"
    seconds, targets, speed_figures = time_to_accuracy(results, table, figures_dir)
    table["target"] = table["task"].map(targets)
    table["time_to_target"] = [
        (f"{seconds[key]:.1f}" if seconds[key] is not None else "not reached")
        if (key := (task, model)) in seconds else None
        for task, model in zip(table["task"], table["model"], strict=True)
    ]
    write_text(reports / "leaderboard.csv", table.to_csv(index=False))
    claims = load_claims(results / "experiments", experiments)
    across_tasks = comparisons(table)
    across = "\n".join(across_tasks_markdown(across_tasks))
    write_text(reports / "leaderboard.md", to_markdown(table) + across + claims_markdown(claims))
    figures = {
        "Best model of each family per task": figures_dir / "family_matrix.png",
        "Test metric vs parameters (Pareto front)": figures_dir / "accuracy_vs_params.png",
        "Test metric vs training time (Pareto front)": figures_dir / "accuracy_vs_time.png",
        "Learning curves": figures_dir / "learning_curves.png",
    }
    paths = iter(figures.values())
    family_matrix(table, next(paths))
    metric_vs_cost(table, "params", next(paths))
    metric_vs_cost(table, "train_seconds", next(paths))
    histories = _histories(results, table)
    learning_curves(histories, next(paths))
    for name, scores in across_tasks.items():
        if critical_difference(scores, figures_dir / f"{name}.png"):
            ranks = ", ".join(f"{f} {r:.2f}" for f, r in average_ranks(scores).items())
            caption = (f"Critical difference across tasks (average rank: {ranks}; "
                       f"{coverage(scores)}; Wilcoxon signed-rank, Holm)")  # fmt: skip
            figures[caption] = figures_dir / f"{name}.png"
    confusions = _confusion_figures(results, table, figures_dir)
    write_metrics(table, reports / "metrics.json")
    write_curves(histories, reports / "curves")
    made_from = provenance(root or results.parent, table)
    for claim in claims:  # every figure of the report sits in reports/figures too
        if claim.get("figure_path"):
            copy = figures_dir / f"experiment_{claim['experiment']}.png"
            write_bytes(copy, claim["figure_path"].read_bytes())
            claim["figure_path"] = copy
    under_tables: dict[str, dict[str, Path]] = {}
    for task, path in confusions.items():
        under_tables.setdefault(task, {})[f"{task}: test confusion matrices"] = path
    for task, path in speed_figures.items():
        caption = f"{task}: time to accuracy ({TARGET_RULE}: {targets[task]})"
        under_tables.setdefault(task, {})[caption] = path
    write_text(reports / "index.html", render(table, figures, made_from, claims, under_tables))
    return reports


def _run_files(results: Path, table: pd.DataFrame, name: str, **read_csv) -> dict:
    """(task, model) -> results/<task>/<model>/<name> (for several seeds, the first seed's)
    read as a table, for the ok runs that left one."""
    tables = {}
    for task, model in table.loc[table["status"] == "ok", ["task", "model"]].itertuples(False):
        if (path := run_file(results / task / model, name)) is not None:
            tables[task, model] = pd.read_csv(path, **read_csv)
    return tables


def _histories(results: Path, table: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    return _run_files(results, table, "history.csv")


def _confusion_figures(results: Path, table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """figures/confusion_<task>.png for each task whose runs left test confusion matrices
    (class targets); task -> figure."""
    by_task: dict[str, dict[str, pd.DataFrame]] = {}
    for (task, model), matrix in _run_files(results, table, "confusion.csv",
                                            index_col="true").items():  # fmt: skip
        by_task.setdefault(task, {})[model] = matrix
    figures = {}
    for task, matrices in sorted(by_task.items()):
        figures[task] = folder / f"confusion_{task}.png"
        confusion_matrices(matrices, task, figures[task])
    return figures
