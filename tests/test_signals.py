"""SIGTERM (what SLURM, systemd and Kubernetes send) and SIGINT (Ctrl+C) during a real fit:
exit 128 + the signal with one line, the MLflow run ended KILLED, the previous results and the
results folder left as they were."""

import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, wait_for_fit


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_fit_exits_128_plus_it_and_ends_the_run_killed(
    tmp_path, prepared_root, signum, code
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "results/mnist1d/mlp").mkdir(parents=True)
    (tmp_path / "results/mnist1d/mlp/metrics.json").write_text("{}\n")  # "the previous result"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "pipelines/train.py"), "task=mnist1d", "model=mlp",
         "profile=tiny", "trainer.max_epochs=100000", "tracking.system_metrics_interval=null",
         f"paths.prepared={prepared_root}", f"paths.results={tmp_path / 'results'}",
         f"tracking.uri={uri}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_fit(process, uri)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("convrec:")]
    assert f"stopped by {signal.Signals(signum).name}" in line
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    assert run.info.status == "KILLED"
    assert (tmp_path / "results/mnist1d/mlp/metrics.json").read_text() == "{}\n"
    assert [p.name for p in (tmp_path / "results/mnist1d").iterdir()] == ["mlp"]  # no staging


def test_a_stop_waits_until_the_main_thread_has_left_the_sql_stores_code(tmp_path):
    """A stop raised inside the MLflow SQL store's session code can leave SQLite's write lock
    held, so the run's KILLED status could never be written: it is raised just after."""
    import os

    from convrec.errors import Interrupted, stop_on_signals

    left = []
    inside = tmp_path / "site-packages/sqlalchemy/orm/session.py"  # a path the store's code has
    source = "def commit(kill, wait):\n    kill()\n    wait()\n    return 'committed'\n"
    namespace = {}
    exec(compile(source, str(inside), "exec"), namespace)

    def wait():
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # Python code runs: the handler would fire here
            pass

    with pytest.raises(Interrupted) as stopped, stop_on_signals():
        left.append(namespace["commit"](lambda: os.kill(os.getpid(), signal.SIGINT), wait))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass
    assert left == ["committed"]  # the store's call finished; the stop came after it
    assert stopped.value.exit_code == 130
