"""Two CPU processes (gloo, ddp_spawn) inside pytest: ranks agree, only rank 0 publishes, and
they take the same steps as one process with the same global batch."""

import json

import pandas as pd
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
    # tiny profile: 8 steps of the global batch (64: 32 per process)
    assert history[1].split(",")[-2] == str(8 * 64)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]  # one run, not one per rank
    assert runs[0].info.run_id == metrics["mlflow_run_id"]
    assert "val/acc" in runs[0].data.metrics
    assert runs[0].data.params["batch.per_device"] == "32"


def _val_losses(tmp_path, prepared_root, trainer: str) -> list[float]:
    out = tmp_path / trainer
    out.mkdir()
    cfg = compose_config("train", [
        "task=mnist1d", "model=mlp", "model.net.dropout=0", f"trainer={trainer}",
        "profile=tiny", "trainer.max_epochs=2", "seed=3", f"paths.prepared={prepared_root}",
        f"paths.results={out}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ])  # fmt: skip
    train(cfg)
    history = pd.read_csv(out / "mnist1d" / "mlp" / "history.csv")
    return list(history["val/loss"])


def test_two_gloo_processes_take_the_same_steps_as_one_with_the_same_global_batch(
    tmp_path, prepared_root, monkeypatch
):
    # No dropout: its masks are drawn per process. Global batch 64: 32 per process.
    monkeypatch.chdir(tmp_path)
    one = _val_losses(tmp_path, prepared_root, "cpu")
    two = _val_losses(tmp_path, prepared_root, "ddp_cpu")
    assert len(one) == len(two) == 2
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-3, (one, two)
