"""A short real fit through the Lightning Trainer, recorded in a temporary SQLite MLflow store."""

import json
import math
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import REPO, compose_config, run_stage
from convrec.data.datamodule import PreparedDataModule
from convrec.lit.history import read_history
from convrec.training import train

METRICS_KEYS = {"task", "model", "family", "metric", "value", "params", "train_seconds",
                "samples_per_second", "latency_ms", "memory_mb"}  # fmt: skip
ARTIFACTS = {"config.yaml", "model_summary.txt", "history.csv", "metrics.json", "checkpoints",
             "confusion.csv"}  # fmt: skip


def tiny_run(tmp_path, prepared_root, *overrides):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config("train", [
        "profile=tiny", f"paths.prepared={prepared_root}", f"tracking.uri={uri}",
        "tracking.system_metrics_interval=0.1", *overrides,
    ])  # fmt: skip
    return cfg, uri


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # results/ land here; project_root() falls back to cwd
    return tmp_path


def test_a_short_fit_writes_results_and_one_finished_mlflow_run(project, prepared_root):
    cfg, uri = tiny_run(project, prepared_root, "task=mnist1d", "model=gru", "seed=0",
                        "trainer.max_epochs=2")  # fmt: skip
    best_val = train(cfg)

    out = project / "results" / "mnist1d" / "gru"
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRICS_KEYS <= set(metrics)
    assert metrics["family"] == "rnn" and metrics["metric"] == "accuracy"
    assert 0 <= metrics["value"] <= 100 and metrics["params"] > 0
    assert metrics["train_seconds"] > 0 and metrics["samples_per_second"] > 0
    assert metrics["best_val"] == pytest.approx(best_val)
    # weights, gradients and Adam's two moments at least; activations on top
    assert metrics["memory_mb"] > 4 * 4 * metrics["params"] / 2**20 and metrics["latency_ms"] > 0
    confusion = pd.read_csv(out / "confusion.csv", index_col="true").to_numpy()
    tested = cfg.trainer.limit_test_batches * cfg.task.batch_size  # the tiny profile's share
    assert confusion.sum() == min(tested, metrics["test_samples"])
    assert 100 * np.trace(confusion) / confusion.sum() == pytest.approx(metrics["value"], abs=0.01)
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train/loss,train/acc,val/loss,val/acc,samples,train_seconds"
    assert len(history) == 3  # header + 2 epochs
    # limit_train_batches counts batches (the tiny profile's 8), not Lightning's chunks of them;
    # the schedule spans every optimizer step of the run, one a batch
    batches = cfg.trainer.limit_train_batches
    assert [int(row.split(",")[5]) for row in history[1:]] == [batches * cfg.task.batch_size] * 2
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    (schedule,) = best["lr_schedulers"]
    assert schedule["total_steps"] == 2 * batches
    assert best["global_step"] == schedule["last_epoch"] == batches * best["epoch"] + batches
    assert [p.name for p in out.parent.iterdir()] == ["gru"]  # no staging folder left

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mnist1d")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "gru"
    assert run.info.run_id == metrics["mlflow_run_id"]
    assert {
        "task": "mnist1d",
        "model": "gru",
        "family": "rnn",
        "profile": "tiny",
    }.items() <= run.data.tags.items()
    assert len(run.data.tags["git_commit"]) >= 7
    assert run.data.params["model.net.hidden_size"] == "128"
    assert run.data.params["trainer.max_epochs"] == "2"
    # the protocol it trained under: the task's, for every model (convrec.protocol)
    assert {"profile": "tiny", "epochs": 2, "train_examples": 3600, "val_examples": 400,
            "test_examples": 1000}.items() <= metrics["protocol"].items()  # fmt: skip
    assert run.data.params["protocol.epochs"] == "2"
    assert run.data.params["protocol.train_examples"] == "3600"
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2  # one per epoch
    assert any(key.startswith("system/") for key in run.data.metrics)
    assert "test/acc" in run.data.metrics
    assert run.data.metrics["memory_mb"] == pytest.approx(metrics["memory_mb"])
    assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/best.ckpt"
    ]
    summary = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_summary.txt")
    assert "GRU" in summary and "Output Shape" in summary and "Total params" in summary


def test_steps_skip_lightnings_hooks_after_the_first_unless_a_callback_listens_to_every_one(
    project, prepared_root, monkeypatch
):
    """convrec.lit.base.direct_steps: on one CPU process, after the fit's first step (which
    TrainingMemory measures), backward and the optimizer are called directly; a callback that
    listens to every step's hooks gets every step through Lightning. Both count every step
    in global_step and train to the same weights."""
    import convrec.training
    from convrec.costs import TrainingMemory

    calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}

    class Listening(TrainingMemory):
        def on_before_backward(self, trainer, pl_module, loss):
            calls["on_before_backward"] += 1
            super().on_before_backward(trainer, pl_module, loss)

        def on_after_backward(self, trainer, pl_module):
            calls["on_after_backward"] += 1

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            calls["on_before_optimizer_step"] += 1

    monkeypatch.setattr(convrec.training, "TrainingMemory", Listening)
    cfg, _ = tiny_run(project, prepared_root, "task=mnist1d", "model=mlp", "trainer.max_epochs=2")
    out = project / "results" / "mnist1d" / "mlp"
    steps = 2 * cfg.trainer.limit_train_batches
    results = []
    for first_step_only in (True, False):
        Listening.first_step_only = first_step_only
        calls.update(dict.fromkeys(calls, 0))
        train(cfg)
        assert set(calls.values()) == {1 if first_step_only else steps}
        best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
        epochs = best["epoch"] + 1
        assert best["global_step"] == best["lr_schedulers"][0]["last_epoch"] == steps * epochs // 2
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["memory_mb"] > 0
        results.append((metrics["value"], metrics["best_val"], metrics["memory_mb"], epochs,
                        (out / "history.csv").read_text().split("\n")[1].split(",")[:5]))
    assert results[0] == results[1]


def test_a_crash_ends_the_run_failed_and_publishes_nothing(project, prepared_root, monkeypatch):
    def broken(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(PreparedDataModule, "val_dataloader", broken)
    cfg, uri = tiny_run(project, prepared_root, "task=mnist1d", "model=mlp")
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(cfg)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert run.info.status == "FAILED"
    results = project / "results" / "mnist1d"
    assert not results.exists() or not any(results.iterdir())


def test_a_task_without_validation_trains_on_all_of_train_and_tests_the_last_epoch(
    project, prepared
):
    root = prepared("italy_power_demand")  # val_size 0, select: last (Fawaz et al.'s protocol)
    cfg, _ = tiny_run(project, root, "task=italy_power_demand", "model=fcn",
                      "trainer.max_epochs=3", "trainer.limit_train_batches=null")  # fmt: skip
    assert math.isnan(train(cfg))  # there is no validation score to return
    metrics = json.loads((project / "results/italy_power_demand/fcn/metrics.json").read_text())
    assert metrics["best_val"] is None and metrics["epochs"] == 3
    history = read_history(project / "results/italy_power_demand/fcn/history.csv")
    assert [int(row["samples"]) for row in history] == [67] * 3  # every train series
    assert all(row["val/loss"] == row["val/acc"] == "" for row in history)
    # the tested checkpoint is the final epoch's (saved once, at the end)
    best = project / "results/italy_power_demand/fcn/checkpoints/best.ckpt"
    assert torch.load(best, map_location="cpu", weights_only=False)["epoch"] == 2


def test_accelerator_auto_trains_on_the_cpu_here_and_the_run_records_device_and_precision(
    project, prepared_root
):
    cfg, uri = tiny_run(project, prepared_root, "task=mnist1d", "model=mlp")
    assert cfg.trainer.accelerator == "auto" and cfg.trainer.precision == "auto"
    train(cfg)
    metrics = json.loads((project / "results/mnist1d/mlp/metrics.json").read_text())
    assert (metrics["device"], metrics["precision"]) == ("cpu", "32-true")
    (run,) = MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("mnist1d").experiment_id]
    )
    assert (run.data.params["device"], run.data.params["precision"]) == ("cpu", "32-true")


def test_a_diverged_run_exits_non_zero_with_one_line_and_keeps_the_previous_results(
    project, prepared_root
):
    """model.lr=1e30: the loss goes NaN; the run is a failure, not a result."""
    cfg, uri = tiny_run(project, prepared_root, "task=mnist1d", "model=mlp")
    train(cfg)
    out = project / "results" / "mnist1d" / "mlp"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    json.loads((out / "metrics.json").read_text(), parse_constant=pytest.fail)  # strict JSON

    done = run_stage("train.py", "task=mnist1d", "model=mlp", "profile=tiny", "model.lr=1e30",
                     f"paths.prepared={prepared_root}", f"paths.results={project / 'results'}",
                     f"tracking.uri={uri}", cwd=project)  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("convrec: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "run mnist1d/mlp (seed 0) diverged" in errors[0] and "step" in errors[0]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in out.parent.iterdir()] == ["mlp"]  # no staging folder left
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id],
                              order_by=["attributes.start_time DESC"])  # fmt: skip
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["outcome"] == "diverged"
    assert runs[1].info.status == "FINISHED"


def test_three_seeds_train_in_one_process_under_one_parent_run_and_compare_reads_them(
    project, prepared_root, monkeypatch
):
    """seeds=3: each seed's files and nested MLflow run, the aggregate with mean, std and 95%
    CI; a seed that diverges is recorded as such and the others go on. Compare reads what
    training wrote (convrec.results' contract)."""
    import convrec.seeds
    from convrec.compare.leaderboard import collect, to_markdown
    from convrec.results import AGGREGATE_KEYS, RUN_KEYS, read_metrics
    from convrec.seeds import train_seeds

    real_train = convrec.seeds.train

    def seed_1_diverges(cfg, **kwargs):
        if cfg.seed == 1:
            cfg.model.lr = 1e30
        return real_train(cfg, **kwargs)

    cfg, uri = tiny_run(project, prepared_root, "task=mnist1d", "model=mlp", "seeds=3")
    train_seeds(cfg)
    out = project / "results" / "mnist1d" / "mlp"
    summary = read_metrics(out / "metrics.json")
    assert set(RUN_KEYS) | set(AGGREGATE_KEYS) <= set(summary)
    assert summary["seeds"] == 3 and summary["diverged"] == 0 and len(summary["values"]) == 3
    assert summary["value"] == pytest.approx(np.mean(summary["values"]), abs=1e-3)
    assert summary["value_std"] == pytest.approx(np.std(summary["values"], ddof=1), abs=1e-3)
    assert summary["value_ci95"] == pytest.approx(4.303 * summary["value_std"] / 3**0.5, rel=1e-3)
    assert sorted(p.name for p in (out / "seeds").iterdir()) == ["0", "1", "2"]
    for seed in range(3):
        assert json.loads((out / "seeds" / str(seed) / "metrics.json").read_text())["seed"] == seed
    assert (out / "seeds/0/history.csv").is_file() and (out / "seeds/0/checkpoints/best.ckpt")

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_id == summary["mlflow_run_id"] and parent.info.status == "FINISHED"
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert parent.data.metrics["value_mean"] == pytest.approx(summary["value_mean"])
    assert parent.data.metrics["value_ci95"] == pytest.approx(summary["value_ci95"])
    assert parent.data.metrics["latency_ms"] == pytest.approx(summary["latency_ms"])

    table = collect(project / "results", [{"task": "mnist1d", "model": "mlp"}])
    (row,) = table.itertuples()
    assert row.status == "ok" and row.seeds == 3 and np.isfinite(row.value_ci95)
    assert f"{summary['value']:.2f} ± {summary['value_ci95']:.2f}" in to_markdown(table)

    monkeypatch.setattr(convrec.seeds, "train", seed_1_diverges)
    train_seeds(cfg)
    summary = read_metrics(out / "metrics.json")
    assert summary["diverged"] == 1 and len(summary["values"]) == 2
    assert [r["status"] for r in summary["runs"]] == ["finished", "diverged", "finished"]
    assert sorted(p.name for p in (out / "seeds").iterdir()) == ["0", "2"]
    assert "(1 of 3 seeds diverged)" in to_markdown(collect(project / "results",
                                                            [{"task": "mnist1d", "model": "mlp"}]))


def test_seeds_train_one_after_the_other_only_where_lightning_uses_one_device():
    """`trainer.devices=auto` means one device on a machine with at most one GPU (it used to
    fail on int("auto")); two devices, or all of them (-1), need one seed per command."""
    import torch
    from omegaconf import ListConfig

    from convrec.seeds import one_device

    assert one_device(1) and one_device("1") and one_device(None) and one_device(ListConfig([0]))
    assert one_device("auto") == (torch.cuda.device_count() <= 1)
    assert not one_device(2) and not one_device(-1) and not one_device([0, 1])


# In a fresh process: run the train stage's entry point as DVC's command does (through runpy,
# so that the process can be inspected as the stage ends it), then multiply subnormal floats in
# parallel: every thread of the CPU pool flushes them only if the mode was set before the pool
# started. The control starts the pool first.
_FLUSH_PROBE = """
import atexit, runpy, sys, torch

def probe():
    # the smallest subnormal float32, from its bits (a conversion would flush it already), in
    # a tensor large enough to be split across the pool's threads; its bits after the product
    product = torch.ones(1 << 22, dtype=torch.int32).view(torch.float32).mul(1.0)
    print("flushed" if bool(product.view(torch.int32).eq(0).all()) else "subnormal", flush=True)

if sys.argv[1] == "pool-first":
    torch.rand(1 << 22).mul(2).sum()
    torch.set_flush_denormal(True)
    probe()
else:
    atexit.register(probe)  # the stage ends its own process (convrec.quick_exit): probe then
    sys.argv = ["pipelines/train.py", *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_every_cpu_thread_of_a_train_stage_flushes_subnormal_floats(project, prepared_root):
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT" or torch.get_num_threads() < 2:
        pytest.skip("a CPU without the flush-to-zero mode, or a single thread")
    _, uri = tiny_run(project, prepared_root)
    args = ["task=mnist1d", "model=mlp", "profile=tiny", "seeds=1",
            f"paths.prepared={prepared_root}", f"paths.results={project / 'results'}",
            f"tracking.uri={uri}"]  # fmt: skip
    probe = project / "probe.py"
    probe.write_text(_FLUSH_PROBE)
    outcomes = {}
    for mode in ("pool-first", "stage"):
        done = subprocess.run([sys.executable, str(probe), mode, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outcomes[mode] = done.stdout.split()[-1]
    assert outcomes == {"pool-first": "subnormal", "stage": "flushed"}
