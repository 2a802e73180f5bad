"""A run killed mid-fit (SIGKILL: what the OOM killer or a lost node does) resumes from its
last checkpoint when the same command runs again, into the same MLflow run, and ends with the
metrics of a run never interrupted; runs whose process is gone are ended KILLED."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO
from convrec.processes import this_process
from convrec.tracking.mlflow_run import end_orphaned_runs


def _train(folder, prepared_root, *extra):
    return [sys.executable, str(REPO / "pipelines/train.py"), "task=mnist1d", "model=gru",
            "profile=tiny", "trainer.limit_train_batches=null", "trainer.max_epochs=5",
            "resume.checkpoint_seconds=0", "tracking.system_metrics_interval=null",
            f"paths.prepared={prepared_root}", f"paths.results={folder / 'results'}",
            f"paths.partial={folder / '.partial'}", f"tracking.uri=sqlite:///{folder / 'm.db'}",
            *extra]  # fmt: skip


def _metrics(folder):
    metrics = json.loads((folder / "results/mnist1d/gru/metrics.json").read_text())
    return {k: metrics[k] for k in ("value", "best_val", "test", "epochs")}


@pytest.mark.slow
def test_a_run_killed_mid_fit_resumes_and_ends_as_if_never_interrupted(tmp_path, prepared_root):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = subprocess.run(_train(whole, prepared_root), cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    process = subprocess.Popen(_train(killed, prepared_root), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    last = None
    deadline = time.monotonic() + 300
    while last is None or not (last / "checkpoints/last.ckpt").is_file():
        assert process.poll() is None, "the run ended before a checkpoint could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
        last = next((killed / ".partial/mnist1d/gru").glob("*"), None)
    history = last / "history.csv"
    while not history.is_file() or len(history.read_text().splitlines()) < 3:  # 2 epochs done
        assert process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "results").exists()  # nothing published
    client = MlflowClient(f"sqlite:///{killed / 'm.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert run.info.status == "RUNNING"  # nothing in the killed process could end it

    rerun = subprocess.run(_train(killed, prepared_root), cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = [line for line in rerun.stdout.splitlines() if "convrec: resuming at epoch" in line]
    assert resumed and int(resumed[0].split("epoch ")[1].split()[0]) >= 3, rerun.stdout[-2000:]
    assert _metrics(killed) == _metrics(whole)
    (again,) = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert int(again.data.tags["resumed_at_epoch"]) >= 3
    assert not (killed / ".partial").exists()  # no staging folder left
    assert not (killed / "results/mnist1d/gru/checkpoints/last.ckpt").exists()
    assert [p.name for p in (killed / "results/mnist1d").iterdir()] == ["gru"]


def test_runs_left_running_by_a_process_that_is_gone_are_ended_killed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    me = {k: str(v) for k, v in this_process().items()}
    dead = {**me, "pid": gone.stdout.strip()}
    elsewhere = {**dead, "host": f"not-{socket.gethostname()}"}
    client = MlflowClient(uri)
    experiment = client.create_experiment("e")
    ids = {name: client.create_run(experiment, tags=tags).info.run_id
           for name, tags in (("dead", dead), ("mine", me), ("elsewhere", elsewhere))}  # fmt: skip
    assert end_orphaned_runs(uri) == [ids["dead"]]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"dead": "KILLED", "mine": "RUNNING", "elsewhere": "RUNNING"}
