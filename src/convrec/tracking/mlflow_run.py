"""One MLflow run per training run, owned by the code that starts it.

The run is created here (not by Lightning's logger) so that system metrics
are sampled for its whole life and so that a crash ends it as FAILED.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import mlflow
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from convrec.errors import Interrupted
from convrec.paths import store_root
from convrec.processes import alive, process_tags, this_process

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"
MAX_PARAMS_PER_CALL = 100  # MLflow's log_batch limit
SWEEP_PARENT_ENV = "CONVREC_SWEEP_PARENT_RUN"  # set by convrec.tracking.sweep for a sweep's jobs
SWEEP_OVERRIDES_ENV = "CONVREC_SWEEP_OVERRIDES"  # one job's overrides, a JSON list


def tracking_uri(configured: str | None, root: Path) -> str:
    """Explicit config, else $MLFLOW_TRACKING_URI, else an absolute SQLite file in the project.

    Absolute, because a relative sqlite path would silently create a new
    database wherever the process happens to run; a queued DVC experiment's copy
    uses its enclosing project's store (convrec.paths.store_root).
    """
    if configured:
        return _credentials_to_environment(str(configured))
    default = f"sqlite:///{(store_root(root) / DB_NAME).resolve()}"
    return _credentials_to_environment(os.environ.get("MLFLOW_TRACKING_URI") or default)


def _credentials_to_environment(uri: str) -> str:
    """An http(s) URI's user and password move to MLFLOW_TRACKING_USERNAME / _PASSWORD, where
    MLflow's client reads them: MLflow prints the URI it is given (each run's "View run" link),
    which would otherwise show the password. This process and its children (sweep jobs)
    authenticate the same."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not (parts.username or parts.password):
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username or "")
    os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password or "")
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store sit beside the database file; a server decides its own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_NAME).resolve().as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(uri)
    try:
        return client.create_experiment(name, artifact_location=root and f"{root}/{name}")
    except MlflowException:  # another process created it first
        return client.get_experiment_by_name(name).experiment_id


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextmanager
def tracked_run(
    uri: str,
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    system_metrics_interval: float | None = 5.0,
    parent: str | None = None,
    resume: str | None = None,
) -> Iterator[str]:
    """Yield the id of a new run, or of run `resume` reopened (an interrupted run resumed);
    end it FINISHED, FAILED if the block raises, or KILLED if a signal stopped it
    (convrec.errors.Interrupted).

    System metrics (CPU, memory, GPU) are sampled every `system_metrics_interval`
    seconds for the run's whole life; None turns them off. `parent`: the id of the active
    run this one nests under (the seeds of one (task, model)). Every run carries its
    process (host, pid, process_started), so that a later stage can end it KILLED when that
    process is gone (end_orphaned_runs).
    """
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = ensure_experiment(client, experiment, uri)
    if sweep := os.environ.get(SWEEP_PARENT_ENV):  # a job of a `-m` sweep: nest it
        tags = {**tags, "mlflow.parentRunId": sweep,
                "sweep_overrides": os.environ.get(SWEEP_OVERRIDES_ENV, "[]")}  # fmt: skip
    if parent is not None:
        tags = {**tags, "mlflow.parentRunId": parent}
    tags = {**tags, **process_tags()}
    if system_metrics_interval is not None:
        mlflow.set_system_metrics_sampling_interval(system_metrics_interval)
    if resume is not None and not _exists(client, resume):
        tags, resume = {**tags, "resumes": resume}, None  # its store was reset: a new run
    run = mlflow.start_run(
        run_id=resume,
        experiment_id=None if resume else experiment_id,
        run_name=None if resume else run_name,
        tags=dict(tags),
        log_system_metrics=system_metrics_interval is not None,
        nested=parent is not None,
    )
    try:
        yield run.info.run_id
    except (Interrupted, KeyboardInterrupt):  # stopped from outside: not the run's own failure
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def _exists(client: MlflowClient, run_id: str) -> bool:
    try:
        client.get_run(run_id)
        return True
    except MlflowException:
        return False


def end_orphaned_runs(uri: str) -> list[str]:
    """End KILLED every run of this host left RUNNING by a process that is gone (SIGKILL, the
    OOM killer: nothing in that process could end it). Runs of other hosts are left alone, as
    are runs older than these tags. Returns the ids it ended."""
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    host = this_process()["host"].replace("'", "")
    running = client.search_runs(
        experiments, f"attributes.status = 'RUNNING' and tags.host = '{host}'", max_results=5000
    )
    ended = []
    for run in running:
        if not alive(run.data.tags):
            client.set_terminated(run.info.run_id, "KILLED")
            ended.append(run.info.run_id)
    return ended


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, writing into a run that `tracked_run` opened and will end.

    Lightning calls `finalize` after fit and again after test; the stock logger
    then marks the run FINISHED, which also stops MLflow's system-metrics
    sampling half-way. The run's owner ends it instead.
    """

    def finalize(self, status: str = "success") -> None:
        pass


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"model.net.channels": "[32, 64]", ...} for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def log_params(params: Mapping[str, str]) -> None:
    items = list(params.items())
    for start in range(0, len(items), MAX_PARAMS_PER_CALL):
        mlflow.log_params(dict(items[start : start + MAX_PARAMS_PER_CALL]))
