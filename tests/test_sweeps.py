"""`-m` sweeps through Hydra's launchers and the Optuna sweeper: one MLflow parent run per
sweep, created before any job, every job's run nested under it, the best job on the parent."""

from __future__ import annotations

import json
import os

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import CONF, run_stage


def _sweep(tmp_path, prepared_root, *args):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_stage(
        "train.py", "-m", "task=mnist1d", "profile=tiny", f"paths.prepared={prepared_root}",
        *args, cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stderr
    assert "Callback SweepParentRun" not in result.stderr  # Hydra reports a raising callback
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    jobs = [r for r in runs if r.info.run_id != parent.info.run_id]
    return parent, jobs


def _best(jobs):
    return max(jobs, key=lambda r: r.data.metrics["best_val"])


@pytest.mark.slow
def test_eight_parallel_joblib_jobs_end_finished_under_one_parent_run(tmp_path, prepared_root):
    seeds = ",".join(str(s) for s in range(8))
    parent, jobs = _sweep(tmp_path, prepared_root, "model=mlp", f"seed={seeds}",
                          "hydra/launcher=local", "hydra.launcher.n_jobs=8")  # fmt: skip
    assert len(jobs) == 8 and {r.info.status for r in jobs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and parent.data.tags["launcher"] == "JoblibLauncher"
    assert parent.data.metrics["jobs"] == parent.data.metrics["jobs_finished"] == 8
    # the parent was there before any job started
    assert parent.info.start_time <= min(r.info.start_time for r in jobs)
    best = _best(jobs)
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.params["best.seed"] == best.data.params["seed"]
    assert f"seed={best.data.params['seed']}" in json.loads(best.data.tags["sweep_overrides"])


@pytest.mark.slow
def test_an_optuna_sweep_of_eight_trials_leaves_the_best_value_and_params_on_its_parent(
    tmp_path, prepared_root
):
    parent, jobs = _sweep(tmp_path, prepared_root, "model=cnn", "hparams_search=cnn",
                          "hydra.sweeper.n_trials=8")  # fmt: skip
    assert len(jobs) == 8 and {r.info.status for r in jobs} == {"FINISHED"}
    assert parent.data.tags["sweeper"] == "OptunaSweeper"
    best = _best(jobs)
    assert parent.data.metrics["best_value"] == best.data.metrics["best_val"]
    for key in ("model.lr", "model.net.kernel_size", "model.net.channels"):
        assert parent.data.params[f"best.{key}"] == best.data.params[key]
    for job in jobs:  # each trial trained with the values it reports (nothing merged after)
        for override in json.loads(job.data.tags["sweep_overrides"]):
            key, value = override.split("=", 1)
            if key in ("model.lr", "model.net.kernel_size"):
                assert float(job.data.params[key]) == float(value), (key, value)


def test_every_family_has_a_search_space_over_keys_its_models_have():
    absent = object()
    for space, model in [("mlp", "mlp"), ("cnn", "cnn"), ("tcn", "tcn"), ("rnn", "lstm"),
                         ("rnn", "gru"), ("hybrid", "cnn_lstm")]:  # fmt: skip
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", [f"hparams_search={space}", f"model={model}"],
                          return_hydra_config=True)  # fmt: skip
        sweeper = cfg.hydra.sweeper
        assert sweeper.direction == "maximize" and sweeper.n_trials >= 8
        assert sweeper.sampler.seed == 0  # a search is reproducible
        for key in sweeper.params:
            assert OmegaConf.select(cfg, key, default=absent) is not absent, (space, key)


def test_a_trial_whose_job_finished_before_a_crash_gets_the_score_its_run_recorded(tmp_path):
    """A job's MLflow run ends before the sweeper tells the study: a crash between the two leaves
    the trial RUNNING. Run again, the sweeper takes the score from the job's run instead of
    failing the trial and training it again."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from convrec.tracking.sweep import finished_job_scores
    from hydra_plugins.convrec_optuna_sweeper.optuna_sweeper import (
        settle_interrupted_trials,
        trial_overrides,
    )

    space, fixed = {"model.lr": FloatDistribution(1e-4, 1e-1, log=True)}, {"task": "mnist1d"}
    study = optuna.create_study(direction="maximize")
    told, finished, cut_short = (study.ask(space) for _ in range(3))
    study.tell(told, 0.5)
    study.enqueue_trial(told.params)  # the sampler may propose a trial's params again
    again = study.ask(space)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("mnist1d")
    parent = client.create_run(experiment, tags={"sweep": "parent"}).info.run_id
    for trial, score, status in [(told, 0.5, "FINISHED"), (finished, 0.7, "FINISHED"),
                                 (cut_short, 0.9, "KILLED")]:  # fmt: skip
        run = client.create_run(experiment, tags={
            "mlflow.parentRunId": parent,
            "sweep_overrides": json.dumps(list(trial_overrides(trial.params, fixed)))})
        client.log_metric(run.info.run_id, "best_val", score)
        client.set_terminated(run.info.run_id, status)

    settle_interrupted_trials(study, fixed, finished_job_scores(uri, parent))
    states = {t.number: (t.state, t.value) for t in study.get_trials()}
    assert states[finished.number] == (TrialState.COMPLETE, 0.7)
    assert states[cut_short.number] == (TrialState.FAIL, None)  # its job never finished
    assert states[again.number] == (TrialState.FAIL, None)  # the only such job is told's
    assert states[told.number] == (TrialState.COMPLETE, 0.5)


@pytest.mark.slow
def test_an_optuna_sweep_killed_after_two_trials_resumes_to_four_under_one_parent_run(
    tmp_path, prepared_root
):
    """The study lives in optuna.db beside the MLflow store (convrec's own sweeper): the same
    command after a SIGKILL continues it, under the parent run it had."""
    import signal
    import subprocess
    import sys
    import time

    import optuna

    from conftest import REPO

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, str(REPO / "pipelines/train.py"), "-m", "task=mnist1d",
               "model=cnn", "hparams_search=cnn", "hydra.sweeper.n_trials=4", "profile=tiny",
               f"paths.prepared={prepared_root}"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    client, deadline = MlflowClient(uri), time.monotonic() + 300

    def finished_jobs():
        """Jobs whose MLflow run has ended FINISHED (the sweeper may not have told the study
        yet: the resumed sweep takes those scores from MLflow)."""
        try:
            experiment = client.get_experiment_by_name("mnist1d")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
        except Exception:  # the store is being created
            return 0
        return sum(r.info.status == "FINISHED" and "sweep" not in r.data.tags for r in runs)

    while finished_jobs() < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (storage,) = tmp_path.glob("optuna.db")
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{storage}")
    assert 2 <= summary.n_trials <= 4  # two or three done, maybe one under way

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{storage}")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    jobs = [r for r in runs if r.info.run_id != parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    assert len([r for r in jobs if r.info.status == "FINISHED"]) == 4
    assert {r.info.status for r in jobs} <= {"FINISHED", "KILLED"}  # the one the kill cut short
    assert parent.data.metrics["best_value"] == max(r.data.metrics["best_val"] for r in jobs
                                                    if r.info.status == "FINISHED")  # fmt: skip
