"""Train stages under `dvc repro` (DVC_STAGE set) run in the pre-imported worker
(convrec.warm_worker): the same results, exit status, one line and MLflow run status as a cold
start, and the stage's signals reach the run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, wait_for_fit

SCRIPT = str(REPO / "pipelines/train.py")
IMPORTS = REPO / "tests/stage_imports"  # records each process's files, pid and parent


@pytest.fixture
def worker(tmp_path):
    """A worker for pipelines/train.py in the foreground, and the environment its stages need
    (the worker serves one environment: its socket's key)."""
    records = tmp_path / "records"
    records.mkdir()
    env = os.environ | {"DVC_STAGE": "train@mnist1d-mlp", "CONVREC_RECORD_IMPORTS": str(records),
                        "PYTHONPATH": str(IMPORTS)}  # fmt: skip
    log = (tmp_path / "worker.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "convrec.warm_worker", SCRIPT], env=env,
                              cwd=tmp_path, stderr=log)  # fmt: skip
    yield env, server
    server.terminate()
    server.wait(timeout=60)
    log.close()


def _stage(env, tmp_path, prepared_root, *overrides, name="results"):
    return subprocess.Popen(
        [sys.executable, SCRIPT, "task=mnist1d", "model=mlp", "profile=tiny", "seeds=1",
         "tracking.system_metrics_interval=null", f"paths.prepared={prepared_root}",
         f"paths.results={tmp_path / name}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
         *overrides],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _ran_in_worker(records, stage: subprocess.Popen) -> bool:
    """Whether another process (the worker's copy) ran the stage's command line; the stage's
    own process leaves without a record (it never ran the script's work)."""
    runs = [json.loads(r.read_text()) for r in records.glob("*.json")]
    return {r["pid"] for r in runs if r["argv"] == stage.args[1:]} - {stage.pid} != set() and all(
        r["pid"] != stage.pid for r in runs
    )


@pytest.mark.slow
def test_a_stage_in_the_worker_gives_what_a_cold_start_gives(tmp_path, prepared_root, worker):
    env, _ = worker
    cold_env = {k: v for k, v in env.items() if k != "DVC_STAGE"}
    cold = _stage(cold_env, tmp_path, prepared_root, name="cold")
    assert cold.wait(timeout=300) == 0, cold.communicate()[1][-3000:]
    warm = _stage(env, tmp_path, prepared_root, name="warm")
    _, stderr = warm.communicate(timeout=300)

    assert warm.returncode == 0, stderr[-3000:]
    assert _ran_in_worker(tmp_path / "records", warm)
    first, second = (json.loads((tmp_path / f"{n}/mnist1d/mlp/metrics.json").read_text())
                     for n in ("cold", "warm"))  # fmt: skip
    for key in ("value", "best_val", "params", "epochs", "protocol"):
        assert first[key] == second[key], key
    assert first["mlflow_run_id"] != second["mlflow_run_id"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.slow
def test_bad_input_in_the_worker_is_one_line_and_exit_2(tmp_path, prepared_root, worker):
    env, _ = worker
    stage = _stage(env, tmp_path, prepared_root, "trainer.max_epochs=-3")
    _, stderr = stage.communicate(timeout=300)

    assert stage.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("convrec:")]
    assert _ran_in_worker(tmp_path / "records", stage)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                          (signal.SIGKILL, -signal.SIGKILL)])  # fmt: skip
def test_a_signal_to_the_stage_reaches_its_run_in_the_worker(
    tmp_path, prepared_root, worker, signum, code
):
    """SIGTERM and SIGINT are passed on (exit 128 + the signal, one line); a stage's process
    that is killed outright takes its run down with it (SIGTERM from the worker): the MLflow
    run ends KILLED, never left RUNNING."""
    env, _ = worker
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stage = _stage(env, tmp_path, prepared_root, "trainer.max_epochs=100000")
    wait_for_fit(stage, uri)
    stage.send_signal(signum)
    _, stderr = stage.communicate(timeout=120)

    assert stage.returncode == code, stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mnist1d").experiment_id
    deadline = time.monotonic() + 60  # killed outright, the stage cannot wait for its copy
    while "RUNNING" in (statuses := {r.info.status for r in client.search_runs([experiment])}):
        assert time.monotonic() < deadline, statuses
        time.sleep(0.5)
    assert statuses == {"KILLED"}  # the seed's run and its parent
    if signum != signal.SIGKILL:
        assert "Traceback" not in stderr
        (line,) = [line for line in stderr.splitlines() if line.startswith("convrec:")]
        assert f"stopped by {signal.Signals(signum).name}" in line
    assert not (tmp_path / "results/mnist1d/mlp/metrics.json").exists()


@pytest.mark.slow
def test_without_a_worker_a_stage_starts_cold_and_starts_one(tmp_path, prepared_root):
    from convrec.warm_start import socket_path

    env = os.environ | {"DVC_STAGE": "train@mnist1d-mlp", "CONVREC_TEST_KEY": str(tmp_path)}
    path = subprocess.run(
        [sys.executable, "-c", f"from convrec.warm_start import socket_path as s; "
         f"print(s({SCRIPT!r}))"], env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert socket_path(SCRIPT) != path  # the environment is part of the key
    stage = _stage(env, tmp_path, prepared_root)
    _, stderr = stage.communicate(timeout=300)

    assert stage.returncode == 0, stderr[-3000:]
    assert (tmp_path / "results/mnist1d/mlp/metrics.json").is_file()
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.5)
    os.unlink(path)  # a worker whose socket is gone leaves


def test_the_worker_key_is_the_environment_but_the_stage_name(monkeypatch):
    from convrec.warm_start import socket_path

    monkeypatch.setenv("DVC_STAGE", "train@mnist-cnn")
    first = socket_path(SCRIPT)
    monkeypatch.setenv("DVC_STAGE", "train@mnist-lstm")  # DVC's one change between stages
    assert socket_path(SCRIPT) == first
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # read as libraries load: another worker
    assert socket_path(SCRIPT) != first


def test_a_sockets_folder_others_may_enter_gets_no_worker(tmp_path, monkeypatch):
    import tempfile

    from convrec.warm_start import private, sockets_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = sockets_dir()
    assert private(folder)  # made, for this user only
    folder.chmod(0o777)
    assert not private(folder)


@pytest.mark.slow
def test_a_copy_killed_outright_kills_its_stage_the_same_way(tmp_path, prepared_root, worker):
    """The OOM killer's SIGKILL to the copy shows as the stage's own death by SIGKILL (137 in a
    shell), not as an exit status of the stage's process."""
    env, _ = worker
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stage = _stage(env, tmp_path, prepared_root, "trainer.max_epochs=100000")
    wait_for_fit(stage, uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mnist1d").experiment_id
    (copy,) = {int(r.data.tags["pid"]) for r in client.search_runs([experiment])}
    assert copy != stage.pid
    os.kill(copy, signal.SIGKILL)
    _, stderr = stage.communicate(timeout=120)

    assert stage.returncode == -signal.SIGKILL, stderr[-3000:]
