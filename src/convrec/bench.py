"""One measurement experiment, end to end: run it into a staged folder, track it in MLflow,
and leave results/experiments/<name>/summary.json (conclusion, metrics, device, run id)."""

from __future__ import annotations

from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from convrec.atomic import staged_dir, write_json
from convrec.costs import flush_denormals
from convrec.experiments import EXPERIMENTS
from convrec.redaction import redact
from convrec.tracking.mlflow_run import flatten, git_commit, log_params, tracked_run, tracking_uri

MLFLOW_EXPERIMENT = "experiments"


def run_experiment(cfg: DictConfig, root: Path) -> dict:
    flush_denormals()  # as training does: before any tensor operation starts the thread pool
    name = cfg.experiment.name
    run = EXPERIMENTS.get(name)  # unknown names fail here, before any work
    uri = tracking_uri(cfg.tracking.uri, root)
    tags = {"experiment": name, "git_commit": git_commit(root)}
    with (
        staged_dir(root / cfg.paths.results / name) as out,
        tracked_run(uri, MLFLOW_EXPERIMENT, name, tags, None) as run_id,
    ):
        log_params(flatten(redact(OmegaConf.to_container(cfg.experiment, resolve=True))))
        summary = run(cfg, out, root)
        summary = {"experiment": name, **summary, "mlflow_run_id": run_id}
        write_json(out / "summary.json", summary)
        mlflow.log_metrics(summary["metrics"])
        mlflow.set_tag("conclusion", summary["conclusion"])
        mlflow.set_tag("device", summary["device"])
        mlflow.log_artifacts(str(out), artifact_path=name)
    return summary
