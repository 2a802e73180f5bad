"""One MLflow run per compare stage: the report as artifacts, tagged with the commit, and
the training runs it reports grouped under it by a shared tag (`comparison_run`), so the
dashboard filter `tags.comparison_run = '<id>'` lists exactly the runs behind a report."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from convrec.tracking.mlflow_run import tracked_run

EXPERIMENT = "comparison"
GROUP_TAG = "comparison_run"


def log_comparison(uri: str, reports: Path, commit: str) -> str:
    """Log `reports` (the compare stage's folder) and each finished run's headline metric
    (from its leaderboard.csv) to a new run of
    the "comparison" experiment, tag the training runs with its id; return the id. Training
    runs missing from this store (results made elsewhere) are listed in the tag
    `untracked_runs` instead of failing the report."""
    table = pd.read_csv(reports / "leaderboard.csv")
    done = table[table["status"] == "ok"]
    profiles = ",".join(sorted(done["profile"].dropna().unique()))
    tags = {"git_commit": commit, "profile": profiles, "runs": str(len(table))}
    with tracked_run(uri, EXPERIMENT, f"compare {commit[:8]}", tags, None) as run_id:
        mlflow.log_metrics({f"{r.task}.{r.model}": float(r.value) for r in done.itertuples()})
        mlflow.log_artifacts(str(reports), artifact_path="report")
        client, untracked = MlflowClient(uri), []
        for row in done.itertuples():
            try:
                client.set_tag(str(row.mlflow_run_id), GROUP_TAG, run_id)
            except MlflowException:
                untracked.append(f"{row.task}/{row.model}")
        if untracked:
            mlflow.set_tag("untracked_runs", ", ".join(untracked))
    return run_id
