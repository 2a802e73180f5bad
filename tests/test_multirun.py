"""`pipelines/train.py -m` through Hydra's launcher: one MLflow run per job, under the sweep's
parent run."""

import os

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_stage


@pytest.mark.slow
def test_multirun_gives_one_finished_mlflow_run_per_job(tmp_path, prepared_root):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_stage(
        "train.py", "-m", "task=mnist1d", "model=cnn,mlp", "profile=tiny",
        f"paths.prepared={prepared_root}",
        cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]  # the sweep's own
    jobs = [r for r in runs if r.info.run_id != parent.info.run_id]
    assert sorted(r.info.run_name for r in jobs) == ["cnn", "mlp"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {p.name for p in (tmp_path / "results/mnist1d").iterdir()} == {"cnn", "mlp"}
