"""Shared fixtures. Tests use the real code path: real prepared data, real Trainer, real MLflow."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

import convrec.compose
from convrec.results import RUN_KEYS

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


# Each measurement experiment cut to seconds: the settings (conf/experiment/<name>.yaml keys)
# the unit tests and the end-to-end repro override.
SHRUNK_EXPERIMENTS = {
    "parallelism": {"lengths": [16, 32], "repeats": 1},
    "gradients": {"length": 20, "train_steps": 2},
    "activations": {"train_size": 128, "test_size": 64, "epochs": 1, "evals_per_epoch": 2,
                    "net.channels": [4, 4, 4]},  # fmt: skip
    "pooling": {"train_size": 128, "test_size": 64, "epochs": 2},
    "parameter_economy": {"train_size": 128, "test_size": 64, "epochs": 1,
                          "resolutions": [28, 56]},  # fmt: skip
    "overhead": {"repeats": 1, "overrides": ["++trainer.limit_train_batches=8",
                                             "++trainer.limit_val_batches=2",
                                             "++trainer.limit_test_batches=2"]},  # fmt: skip
}


def shrunk_overrides(name: str) -> list[str]:
    """Hydra overrides that run experiment `name` shrunk."""
    settings = SHRUNK_EXPERIMENTS[name].items()
    return [f"experiment={name}"] + [f"experiment.{k}={v}".replace(" ", "") for k, v in settings]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow (CI does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def compose_config(config_name: str = "train", overrides: list[str] | None = None) -> DictConfig:
    return convrec.compose.compose_config(CONF, config_name, overrides or [])


def run_stage(script: str, *args: str, cwd=REPO, env=None) -> subprocess.CompletedProcess:
    """Run a stage entry point (pipelines/<script>) as users and DVC do: a fresh process."""
    return subprocess.run(
        [sys.executable, str(REPO / "pipelines" / script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def running_fit(uri: str) -> bool:
    """Whether the run has logged a training loss (so `fit` is under way)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mnist1d")
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id])
    return any(r.info.status == "RUNNING" and client.get_metric_history(r.info.run_id,
               "train/loss") for r in runs)  # fmt: skip


def wait_for_fit(process: subprocess.Popen, uri: str, seconds: float = 120) -> None:
    """Return once `process`'s run is in `fit` (running_fit); fail if it ends or takes longer."""
    import time

    deadline = time.monotonic() + seconds
    while not running_fit(uri):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"the fit did not start within {seconds:.0f} s"
        time.sleep(0.5)


def run_metrics(**fields) -> dict:
    """A single run's metrics.json as training writes it (convrec.results.RUN_KEYS), with
    `fields` changed."""
    metrics = {
        "task": "mnist", "model": "cnn", "family": "cnn", "metric": "accuracy",
        "metric_key": "test/acc", "value": 99.0, "higher_is_better": True, "params": 1000,
        "train_seconds": 12.5, "samples_per_second": 4000.0, "epochs": 3, "best_val": 98.0,
        "test": {}, "profile": "quick", "seed": 0, "device": "cpu", "precision": "32-true",
        "world_size": 1, "mlflow_run_id": "0123", "baseline": None, "protocol": {},
        "test_samples": 100, "latency_ms": 0.5, "latency_iqr_ms": 0.05, "memory_mb": 1.0,
    }  # fmt: skip
    assert set(metrics) == set(RUN_KEYS)  # the contract and this example agree
    return metrics | fields


def pipeline() -> DictConfig:
    return OmegaConf.load(CONF / "pipeline.yaml")


@pytest.fixture(scope="session", autouse=True)
def stop_warm_workers():
    """The `dvc repro` of end-to-end tests starts pre-imported workers (convrec.warm_worker);
    removing their sockets at the end stops them instead of leaving them idle for a minute."""
    import time

    started = time.time()
    yield
    from convrec.warm_start import sockets_dir

    for path in sockets_dir().glob("*.sock"):
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile: its worker left
            if path.lstat().st_mtime >= started:
                path.unlink()


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline data mirror: $CONVREC_DATA_MIRROR, else ../shared/data beside the checkout."""
    path = Path(os.environ.get("CONVREC_DATA_MIRROR") or REPO.parent / "shared" / "data")
    if not (path / "MNIST").is_dir():
        pytest.skip(f"no data mirror at {path}; set CONVREC_DATA_MIRROR")
    return path.resolve()


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory, mirror: Path):
    """`prepared(task, ...)` prepares tasks once per session, by the real prepare code, and
    returns the folder that holds them."""
    from convrec.data.prepare import prepare_task

    root = tmp_path_factory.mktemp("prepared")

    def ensure(*tasks: str) -> Path:
        missing = [t for t in tasks if not (root / t / "meta.json").is_file()]
        if not missing:
            return root
        old = os.environ.get("CONVREC_DATA_MIRROR")
        os.environ["CONVREC_DATA_MIRROR"] = str(mirror)
        try:
            for task in missing:
                prepare_task(compose_config("prepare", [f"task={task}"]).task, root, root / "raw")
        finally:
            if old is None:
                os.environ.pop("CONVREC_DATA_MIRROR")
            else:
                os.environ["CONVREC_DATA_MIRROR"] = old
        return root

    return ensure


@pytest.fixture(scope="session")
def prepared_root(prepared) -> Path:
    """The small task the training tests fit on (MNIST-1D), prepared."""
    return prepared("mnist1d")


@pytest.fixture
def user_conf(tmp_path, monkeypatch):
    """`write(name, yaml)`: conf/task/<name>.yaml in a copy of conf/; returns the task config
    `prepare` composes. The project root (relative source paths) is tmp_path."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)

    def write(name: str, body: str):
        (conf / "task" / f"{name}.yaml").write_text(textwrap.dedent(body))
        return convrec.compose.compose_config(conf, "prepare", [f"task={name}"]).task

    return write
