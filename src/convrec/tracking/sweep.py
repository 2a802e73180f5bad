"""Hydra callbacks for `-m` sweeps: one MLflow parent run per sweep, and each parallel job
limited to its share of the CPU threads.

The parent run is created in the launching process before any job starts; its id reaches
the jobs through the environment (joblib's workers and SLURM jobs inherit it), and each
job's run names it as `mlflow.parentRunId`, which the dashboard nests under. When the sweep
ends, the parent records how many jobs finished and the best job: its score (`best_value`:
the jobs' `best_val`, which an Optuna sweep also optimises), run id and overrides. The jobs'
runs are read back from the store, so this works whatever process or machine ran them. An
Optuna sweep run again after a crash continues its study (hydra_plugins.convrec_optuna_sweeper)
under the parent run it had.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from convrec.paths import project_root
from convrec.processes import process_tags
from convrec.redaction import redact_text
from convrec.tracking.mlflow_run import (
    SWEEP_OVERRIDES_ENV,
    SWEEP_PARENT_ENV,
    ensure_experiment,
    git_commit,
    tracking_uri,
)

SCORE = "best_val"  # what each job's run logs and the sweep ranks (train's return value)
SCORE_MODE_TAG = "best_val_mode"  # "max" or "min", from the job's LightningModule


class SweepParentRun(Callback):
    def __init__(self) -> None:
        self.run_id: str | None = None
        self.uri: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.uri = tracking_uri(config.tracking.uri, project_root())
        client = MlflowClient(self.uri)
        # Creating the experiment (and so the store's schema) here, before any job starts,
        # also keeps parallel jobs from racing to migrate a fresh SQLite file.
        experiment_id = ensure_experiment(client, config.task.name, self.uri)
        sweeper = str(config.hydra.sweeper.get("_target_", "basic")).rsplit(".", 1)[-1]
        launcher = str(config.hydra.launcher.get("_target_", "basic")).rsplit(".", 1)[-1]
        tags = {"sweep": "parent", "sweeper": sweeper, "launcher": launcher,
                "git_commit": git_commit(project_root()),
                **process_tags()}  # fmt: skip
        if sweeper == "OptunaSweeper":  # its study outlives a crash: so does its parent run
            from hydra_plugins.convrec_optuna_sweeper.optuna_sweeper import study_identity

            storage, study = study_identity(config)
            storage = redact_text(storage)  # a database URL's password stays out of the store
            tags |= {"optuna_study": study, "optuna_storage": storage}
            earlier = client.search_runs(
                [experiment_id], f"tags.sweep = 'parent' and tags.optuna_study = '{study}' and "
                f"tags.optuna_storage = '{storage}'", order_by=["attributes.start_time DESC"],
            )  # fmt: skip
            if earlier:
                self.run_id = earlier[0].info.run_id
                client.update_run(self.run_id, status="RUNNING")
                for key, value in tags.items():
                    client.set_tag(self.run_id, key, value)
        if self.run_id is None:
            run = client.create_run(experiment_id, run_name=f"sweep {config.task.name}",
                                    tags=tags)  # fmt: skip
            self.run_id = run.info.run_id
            client.log_param(self.run_id, "overrides", job_overrides(config.hydra.overrides.task))
        os.environ[SWEEP_PARENT_ENV] = self.run_id

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEEP_OVERRIDES_ENV] = job_overrides(config.hydra.overrides.task)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        client = MlflowClient(self.uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        jobs = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{self.run_id}'")
        finished = [r for r in jobs if r.info.status == "FINISHED"]
        client.log_metric(self.run_id, "jobs", len(jobs))
        client.log_metric(self.run_id, "jobs_finished", len(finished))
        scored = [r for r in finished if SCORE in r.data.metrics]
        if scored:
            higher = scored[0].data.tags.get(SCORE_MODE_TAG, "max") == "max"
            best = (max if higher else min)(scored, key=lambda r: r.data.metrics[SCORE])
            client.log_metric(self.run_id, "best_value", best.data.metrics[SCORE])
            client.set_tag(self.run_id, "best_run_id", best.info.run_id)
            best_params = {}
            for override in json.loads(best.data.tags.get("sweep_overrides") or "[]"):
                key, _, value = override.partition("=")
                best_params[f"best.{key.lstrip('+~')}"] = value
            logged = client.get_run(self.run_id).data.params
            for key, value in best_params.items():
                if key not in logged:  # a param is written once; a sweep resumed after it had
                    client.log_param(self.run_id, key, value)  # logged a best keeps that one,
                client.set_tag(self.run_id, key, value)  # and its tags name the best of all
        # A sweep that ended (Hydra calls this only then) is FINISHED if any job finished; its
        # jobs killed by an earlier crash show as KILLED runs beside the ones that replaced them.
        client.set_terminated(self.run_id, "FINISHED" if finished else "FAILED")
        os.environ.pop(SWEEP_PARENT_ENV, None)
        self.run_id = None


def finished_job_scores(uri: str, parent_run_id: str) -> dict[frozenset[str], list[float]]:
    """The scores of a sweep's finished jobs, keyed by each job's overrides. A job's run ends
    before its sweeper records the score, so a crash between the two leaves a finished job that
    only MLflow knows of; the Optuna sweeper run again takes its score from here."""
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                              "attributes.status = 'FINISHED'")  # fmt: skip
    scores: dict[frozenset[str], list[float]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if SCORE in run.data.metrics:
            overrides = json.loads(run.data.tags.get("sweep_overrides") or "[]")
            scores[sweep_key(overrides)].append(run.data.metrics[SCORE])
    return scores


def job_overrides(overrides: Iterable[str]) -> str:
    """A job's overrides as its runs record them (a JSON list), credentials masked."""
    return json.dumps([redact_text(o) for o in overrides])


def sweep_key(overrides: Iterable[str]) -> frozenset[str]:
    """What a trial's overrides and its job's recorded ones are matched by: the recorded
    ones are masked (job_overrides), so the trial's are masked alike."""
    return frozenset(redact_text(o) for o in overrides)


class ThreadShare(Callback):
    """Under the joblib launcher, n_jobs jobs share the machine: each gets cpu_count / n_jobs
    torch threads instead of all of them, so they do not slow each other down."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        n_jobs = config.hydra.launcher.get("n_jobs")
        if not isinstance(n_jobs, int) or n_jobs == 0:  # not the joblib launcher
            return
        cores = os.cpu_count() or 1
        parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
        import torch

        torch.set_num_threads(max(1, cores // parallel))
