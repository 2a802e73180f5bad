"""Train one (task, model) pair: the logic behind `pipelines/train.py`.

Writes results/<task>/<model>/ (metrics.json, history.csv, config.yaml,
model_summary.txt, checkpoints/best.ckpt) in one rename at the end, and one
MLflow run holding the same things.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import lightning as L
import mlflow
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torchinfo import summary

from convrec.atomic import staged_dir, write_json, write_text
from convrec.config_check import check_config
from convrec.data.datamodule import PreparedDataModule
from convrec.lit.classification import ClassificationModule
from convrec.lit.history import EpochHistory, read_history
from convrec.models import MODELS, build_model, count_parameters
from convrec.models.spec import IOSpec
from convrec.paths import project_root
from convrec.tracking.mlflow_run import (
    RunLogger,
    flatten,
    git_commit,
    log_params,
    tracked_run,
    tracking_uri,
)

MEASURED = ("params", "train_seconds", "samples_per_second")  # also logged as MLflow metrics


def train(cfg: DictConfig) -> float:
    """Fit, test the best checkpoint, record everything; return the monitored validation score."""
    check_config(cfg)
    root = project_root()
    task, model_name = cfg.task.name, cfg.model.name
    datamodule = PreparedDataModule(
        root / cfg.paths.prepared / task, cfg.task.batch_size, cfg.num_workers
    )
    spec = IOSpec.from_meta(datamodule.meta)
    family = MODELS.get(model_name).family

    L.seed_everything(cfg.seed, workers=True)
    net = build_model(model_name, spec, **OmegaConf.to_container(cfg.model.net, resolve=True))
    module = ClassificationModule(
        net,
        spec.num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    is_main = rank_zero_only.rank == 0  # DDP's re-launched ranks train but publish nothing

    uri = tracking_uri(cfg.tracking.uri, root)
    with ExitStack() as stack:
        if is_main:
            out = stack.enter_context(staged_dir(root / cfg.paths.results / task / model_name))
            tags = {"task": task, "model": model_name, "family": family,
                    "profile": str(cfg.profile), "git_commit": git_commit(root)}  # fmt: skip
            interval = cfg.tracking.system_metrics_interval
            run_id = stack.enter_context(tracked_run(uri, task, model_name, tags, interval))
            _log_setup(cfg, net, spec, out)
        else:
            out, run_id = Path(stack.enter_context(tempfile.TemporaryDirectory())), None
        # Lightning's logger acts on rank 0 only; it logs into the run opened above.
        logger = RunLogger(experiment_name=task, run_name=model_name, tracking_uri=uri,
                              run_id=run_id)  # fmt: skip

        history = EpochHistory(out / "history.csv", ClassificationModule.history_keys)
        checkpoint = ModelCheckpoint(
            dirpath=out / "checkpoints", filename="best", monitor=module.monitor,
            mode=module.monitor_mode, save_top_k=1, auto_insert_metric_name=False,
        )  # fmt: skip
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            callbacks=[checkpoint, history, RichProgressBar()],
            logger=logger,
            default_root_dir=str(out),
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_seconds = time.perf_counter() - started
        test_metrics = trainer.test(module, datamodule=datamodule, ckpt_path="best")[0]
        if not is_main:
            return float("nan")
        metrics = _summarise(cfg, family, net, out, test_metrics, fit_seconds, trainer)
        write_json(out / "metrics.json", metrics)
        mlflow.log_metrics({k: metrics[k] for k in MEASURED})
        for name in ("history.csv", "metrics.json"):
            mlflow.log_artifact(str(out / name))
        mlflow.log_artifacts(str(out / "checkpoints"), artifact_path="checkpoints")
    return metrics["best_val"]


def _log_setup(cfg: DictConfig, net: torch.nn.Module, spec: IOSpec, out: Path) -> None:
    """Params, config and layer table reach MLflow before training, so a FAILED run keeps them."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log_params(flatten(resolved))
    write_text(out / "config.yaml", OmegaConf.to_yaml(resolved))
    table = summary(
        net, input_size=(1, *spec.input_shape), col_names=("output_size", "num_params"),
        depth=4, mode="eval", verbose=0, device="cpu",
    )  # fmt: skip
    write_text(out / "model_summary.txt", str(table) + "\n")
    for name in ("config.yaml", "model_summary.txt"):
        mlflow.log_artifact(str(out / name))


def _summarise(cfg, family, net, out, test_metrics, fit_seconds, trainer: L.Trainer) -> dict:
    # Read back from history.csv: under ddp_spawn the callback lived in a child process.
    name, key, scale = ClassificationModule.headline
    rows = read_history(out / "history.csv")
    best_val = max(float(r[ClassificationModule.monitor]) for r in rows)
    samples = sum(int(r["samples"]) for r in rows)
    batch_seconds = sum(float(r["train_seconds"]) for r in rows)
    return {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "family": family,
        "metric": name,
        "value": round(float(test_metrics[key]) * scale, 4),
        "params": count_parameters(net),
        "train_seconds": round(fit_seconds, 3),
        "samples_per_second": round(samples / batch_seconds, 1) if batch_seconds else 0.0,
        "epochs": len(rows),
        "best_val": round(best_val * scale, 4),
        "test": {k: float(v) for k, v in test_metrics.items()},
        "profile": str(cfg.profile),
        "seed": int(cfg.seed),
        "device": str(trainer.strategy.root_device),
        "world_size": trainer.world_size,
        "mlflow_run_id": mlflow.active_run().info.run_id,
    }
