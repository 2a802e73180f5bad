"""Two CPU processes (gloo, ddp_spawn) inside pytest: ranks agree, only rank 0 publishes."""

import json

from mlflow.tracking import MlflowClient

from conftest import compose_config
from convrec.training import train


def test_two_process_cpu_ddp_fit(tmp_path, prepared_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config("train", [
        "task=mnist1d", "model=cnn", "trainer=ddp_cpu", "profile=tiny",
        f"paths.prepared={prepared_root}", f"tracking.uri={uri}",
    ])  # fmt: skip
    train(cfg)

    metrics = json.loads((tmp_path / "results/mnist1d/cnn/metrics.json").read_text())
    history = (tmp_path / "results/mnist1d/cnn/history.csv").read_text().splitlines()
    # tiny profile: 8 batches of 64 per process, 2 processes
    assert history[1].split(",")[-2] == str(8 * 64 * 2)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]  # one run, not one per rank
    assert runs[0].info.run_id == metrics["mlflow_run_id"]
    assert "val/acc" in runs[0].data.metrics
