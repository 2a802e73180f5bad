"""The compare stage's MLflow run, in a real SQLite store."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from conftest import run_metrics
from convrec.compare.mlflow_comparison import EXPERIMENT, GROUP_TAG, log_comparison
from convrec.compare.report import write_reports
from convrec.tracking.mlflow_run import tracked_run


def test_the_comparison_run_holds_the_report_and_groups_the_runs_it_reports(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "results"
    runs = []
    for model, value in (("cnn", 99.2), ("lstm", 98.4), ("gru", 97.0)):
        with tracked_run(uri, "mnist", model, {"task": "mnist"}, None) as run_id:
            pass
        folder = results / "mnist" / model
        folder.mkdir(parents=True)
        run_id = run_id if model != "gru" else "0" * 32  # gru's run: made in another store
        (folder / "metrics.json").write_text(json.dumps(run_metrics(
            model=model, value=value, mlflow_run_id=run_id)))  # fmt: skip
        runs.append({"task": "mnist", "model": model})
    reports = write_reports(results, [*runs, {"task": "mnist", "model": "mlp"}], tmp_path / "r")

    comparison = log_comparison(uri, reports, "abc123def456")

    client = MlflowClient(uri)
    run = client.get_run(comparison)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.tags["git_commit"] == "abc123def456" and run.data.tags["profile"] == "quick"
    assert run.data.metrics == {"mnist.cnn": 99.2, "mnist.lstm": 98.4, "mnist.gru": 97.0}
    assert run.data.tags["untracked_runs"] == "mnist/gru"
    artifacts = {a.path for a in client.list_artifacts(comparison, "report")}
    assert {"report/index.html", "report/leaderboard.md", "report/figures"} <= artifacts
    grouped = client.search_runs(
        [client.get_experiment_by_name("mnist").experiment_id],
        filter_string=f"tags.{GROUP_TAG} = '{comparison}'",
    )
    assert sorted(r.info.run_name for r in grouped) == ["cnn", "lstm"]
