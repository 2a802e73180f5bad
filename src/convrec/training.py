"""Train one (task, model) pair: the logic behind `pipelines/train.py`.

Writes results/<task>/<model>/ (metrics.json, history.csv, config.yaml,
model_summary.txt, checkpoints/best.ckpt, and confusion.csv for class targets) in
one rename at the end, and one MLflow run holding the same things.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import lightning as L
import mlflow
import pandas as pd
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torchinfo import summary

from convrec.atomic import write_json, write_text
from convrec.config_check import check_config, check_pair
from convrec.costs import TrainingMemory, flush_denormals, latency
from convrec.data.contract import SPLITS
from convrec.data.datamodule import PreparedDataModule
from convrec.errors import Diverged, interrupted
from convrec.lit import module_for
from convrec.lit.history import EpochHistory, read_history
from convrec.lit.resume import ResumePoint
from convrec.models import MODELS, build_model, count_parameters
from convrec.models.spec import IOSpec
from convrec.paths import project_root
from convrec.protocol import protocol, split_limits
from convrec.redaction import redact
from convrec.resume import (
    LAST,
    can_resume,
    finish,
    partial_dir,
    read_state,
    resumable_dir,
    start_afresh,
    write_state,
)
from convrec.tracking.mlflow_run import (
    RunLogger,
    end_orphaned_runs,
    flatten,
    git_commit,
    log_params,
    tracked_run,
    tracking_uri,
)

PROGRESS_REFRESH_STEPS = 1  # a Lightning step: a chunk of batches
# Lightning sets this on import so that asking for CUDA never initialises it (fork safety).
# Where CUDA is compiled in but no GPU is found, every optimizer step then asks NVML through a
# fresh dlopen (torch's graph-capture check): ~0.1 ms a step here. The lab forks no workers.
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)

# Values are logged once per epoch (convrec.lit.base), so Lightning's warning that an epoch has
# fewer steps than log_every_n_steps says nothing here, and it counts chunks of 16 batches as
# steps. Lowering the interval instead cost the MLP epoch 18% (2.76 s against 2.34, 5 pairs).
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller "
                        r"than the logging interval")  # fmt: skip

# also logged as MLflow metrics (those a run measured: memory is not, under ddp_spawn)
MEASURED = ("params", "train_seconds", "samples_per_second", "latency_ms", "latency_iqr_ms",
            "memory_mb")


def train(cfg: DictConfig, into: Path | None = None, parent_run: str | None = None) -> float:
    """Fit, test the best checkpoint, record everything; return the monitored validation score
    (NaN for a task without a validation split).

    Alone, the run publishes results/<task>/<model>/ in one rename when it succeeds. As one seed
    of several (convrec.seeds), it writes into `into`, a folder the caller publishes, and its
    MLflow run is nested under `parent_run`."""
    flush_denormals()  # before any tensor operation starts the CPU thread pool
    check_config(cfg)
    root = project_root()
    task, model_name = cfg.task.name, cfg.model.name
    spec = check_pair(cfg, root / cfg.paths.prepared)
    datamodule = datamodule_for(cfg, root)
    datamodule.load()  # read and verify it before a run opens: bad data is one line, no run
    fields = protocol(cfg, datamodule.meta)
    family = MODELS.get(model_name).family

    L.seed_everything(cfg.seed, workers=True)
    net = build_model(model_name, spec, **OmegaConf.to_container(cfg.model.net, resolve=True))
    lit_class = module_for(spec)
    module = lit_class(
        net,
        spec,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    is_main = rank_zero_only.rank == 0  # DDP's re-launched ranks train but publish nothing

    uri = tracking_uri(cfg.tracking.uri, root)
    # Where the run works until it is published, the same for the same config: a rerun after a
    # crash or a kill resumes from its last.ckpt (every DDP process decides alike).
    work = Path(into) if into is not None else partial_dir(cfg, root)
    resume_from = work / LAST if can_resume(work) else None
    with ExitStack() as stack:
        if is_main:
            end_orphaned_runs(uri)
            if into is None:
                final = root / cfg.paths.results / task / model_name
                out = stack.enter_context(resumable_dir(work, final))
            else:
                out = work
                out.mkdir(parents=True, exist_ok=True)
            if resume_from is None:
                start_afresh(out)  # what a run killed before its first checkpoint left
            # best_val_mode: whether a sweep ranks this run's best_val high or low
            mode = module.monitor_mode
            tags = run_tags(cfg, root) | {"seed": str(cfg.seed), "best_val_mode": mode}
            interval = cfg.tracking.system_metrics_interval
            name = model_name if parent_run is None else f"{model_name} seed {cfg.seed}"
            reopen = read_state(out).get("run_id") if resume_from else None
            run_id = stack.enter_context(
                tracked_run(uri, task, name, tags, interval, parent_run, resume=reopen)
            )
            write_state(out, {"run_id": run_id})
            _log_setup(cfg, net, spec, out)
            log_params({f"protocol.{key}": str(value) for key, value in fields.items()})
        else:
            out, run_id = Path(stack.enter_context(tempfile.TemporaryDirectory())), None
        # Lightning's logger acts on rank 0 only; it logs into the run opened above.
        logger = RunLogger(experiment_name=task, run_name=model_name, tracking_uri=uri,
                              run_id=run_id)  # fmt: skip

        history = EpochHistory(out / "history.csv", lit_class.history_keys)
        # "last": a validation split of a handful of series (UCR) cannot pick an epoch, so the
        # final one is tested (the learning rate has annealed to ~0 by then). Such tasks may
        # train on the whole official train split (val_size 0), as their papers do.
        by_val = cfg.task.get("select", "val") == "val"
        no_val = datamodule.meta["split_sizes"]["val"] == 0
        checkpoint = ModelCheckpoint(
            dirpath=out / "checkpoints", filename="best", save_top_k=1,
            monitor=module.monitor if by_val else None, mode=module.monitor_mode,
            auto_insert_metric_name=False, every_n_epochs=_checkpoint_every(cfg, by_val),
        )  # fmt: skip
        memory = TrainingMemory()
        resume_point = ResumePoint(out / LAST, cfg.resume.checkpoint_seconds)
        module.gradient_clip_val = cfg.trainer.get("gradient_clip_val")  # clipped by the module
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            gradient_clip_val=None,
            callbacks=[checkpoint, history, memory, progress_bar(), resume_point],
            logger=logger,
            default_root_dir=str(out),
            precision=resolve_precision(cfg.trainer),
            # the loaders apply the limits (datamodule_for); no validation split: none to run
            limit_train_batches=None, limit_val_batches=0 if no_val else None,
            limit_test_batches=None,
        )
        # The batch is global: each process takes its share, so the learning rate stays.
        per_device = datamodule.per_device_batch(trainer.world_size)  # fails before training
        if is_main:
            # how the number was made: the device and the precision "auto" resolved to
            mlflow.log_params({"batch.global": datamodule.batch_size,
                               "batch.per_device": per_device,
                               "batch.world_size": trainer.world_size,
                               "device": str(trainer.strategy.root_device),
                               "precision": str(trainer.precision)})  # fmt: skip
        if trainer.world_size == 1:  # onto the device before the clock starts
            datamodule.load(trainer.strategy.root_device)
        started = time.perf_counter()
        try:
            with lightning_stops():
                trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from,
                            weights_only=True)  # fmt: skip
        except Diverged as err:  # the run ends FAILED, the previous results stay as they were
            if is_main:
                mlflow.set_tag("outcome", "diverged")
            kept = f" and results/{task}/{model_name} is unchanged" if into is None else ""
            raise Diverged(
                f"run {task}/{model_name} (seed {cfg.seed}) diverged: {err}; it is recorded as "
                f"FAILED{kept}. Lower model.lr or set trainer.gradient_clip_val"
            ) from None
        # a resumed run counts the fit time of the process that was interrupted too
        fit_seconds = time.perf_counter() - started + resume_point.earlier_seconds
        with lightning_stops():
            test_metrics = trainer.test(module, datamodule=datamodule, ckpt_path="best")[0]
        if not is_main:
            return float("nan")
        metrics = _summarise(cfg, family, net, lit_class, out, test_metrics, fit_seconds, trainer)
        metrics["baseline"] = datamodule.meta.get("baseline")
        metrics["protocol"] = fields
        datamodule.setup("test")  # a no-op unless fit ran in spawned DDP processes
        metrics["test_samples"] = len(datamodule.datasets["test"])
        metrics |= _costs(module, datamodule, trainer.strategy.root_device, memory)
        artifacts = ["history.csv", "metrics.json"]
        if (confusion := module.confusion_matrix()) is not None:
            _write_confusion(confusion, spec, out / "confusion.csv")
            artifacts.append("confusion.csv")
        write_json(out / "metrics.json", metrics)
        measured = [*MEASURED, "best_val"]  # best_val: what a sweep ranks (None: no val split)
        mlflow.log_metrics({k: metrics[k] for k in measured if metrics[k] is not None})
        finish(out)  # last.ckpt and the resume state: the run is complete
        if resume_point.resumed_at is not None:
            mlflow.set_tag("resumed_at_epoch", str(resume_point.resumed_at))
        for name in artifacts:
            mlflow.log_artifact(str(out / name))
        mlflow.log_artifacts(str(out / "checkpoints"), artifact_path="checkpoints")
    return metrics["best_val"] if metrics["best_val"] is not None else float("nan")


@contextmanager
def lightning_stops():
    """Lightning ends a fit or a test on SIGTERM itself, with a SystemExit without a code (exit
    0), when its loop sees the signal before the lab's stop is raised (the lab's waits while
    the main thread is in the MLflow store's code, convrec.errors): the lab's stop all the same
    (exit 143, the run KILLED)."""
    try:
        yield
    except SIGTERMException:
        raise interrupted(signal.SIGTERM) from None


def _checkpoint_every(cfg: DictConfig, by_val: bool) -> int:
    """Epochs between saves of best.ckpt. Chosen by validation, an epoch is saved when it
    improves; the final epoch is saved only once, at the end: saving it after every one of a
    UCR task's hundreds of short epochs cost a sixth of its fit (a crash resumes from
    last.ckpt, which convrec.lit.resume writes)."""
    epochs = cfg.trainer.get("max_epochs")
    return 1 if by_val or not isinstance(epochs, int) or epochs < 1 else epochs


def run_tags(cfg: DictConfig, root: Path) -> dict[str, str]:
    """What every run of a (task, model) is found by in MLflow, a seed's or its parent's."""
    return {"task": cfg.task.name, "model": cfg.model.name,
            "family": MODELS.get(cfg.model.name).family, "profile": str(cfg.profile),
            "git_commit": git_commit(root)}  # fmt: skip


def datamodule_for(cfg: DictConfig, root: Path) -> PreparedDataModule:
    """The run's prepared task, cut to the profile's split limits and each split's batches to
    the trainer's `limit_<split>_batches`."""
    batches = {split: cfg.trainer.get(f"limit_{split}_batches") for split in SPLITS}
    return PreparedDataModule(
        root / cfg.paths.prepared / cfg.task.name, cfg.task.batch_size, cfg.num_workers,
        split_limits(cfg), cfg.seed, batches,
    )  # fmt: skip


def resolve_precision(trainer: DictConfig) -> str:
    """`precision: auto`: bf16 mixed precision on a GPU that computes in bf16 (Ampere and
    later), full fp32 elsewhere (a CPU, or an older GPU); anything else as configured."""
    precision = str(trainer.get("precision") or "auto")
    if precision != "auto":
        return precision
    on_gpu = trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    if on_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def progress_bar() -> TQDMProgressBar:
    """Redrawn after every chunk of batches (convrec.data.datamodule.BatchChunks), from the
    training thread. Lightning's Rich bar read the metrics after every batch and redrew from a
    thread of its own, which each fit and test waited for as they ended (up to a second at its
    default rate)."""
    return TQDMProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS)


def _log_setup(cfg: DictConfig, net: torch.nn.Module, spec: IOSpec, out: Path) -> None:
    """Params, config and layer table reach MLflow before training, so a FAILED run keeps them."""
    resolved = redact(OmegaConf.to_container(cfg, resolve=True))  # no credential in the store
    log_params(flatten(resolved))
    write_text(out / "config.yaml", OmegaConf.to_yaml(resolved))
    inputs = spec.example_inputs(1)
    if getattr(net, "decoding", None) == "autoregressive":  # it reads the target while training
        inputs.append(torch.zeros(1, spec.target_length, dtype=torch.long))
    table = summary(
        net, input_data=inputs, col_names=("output_size", "num_params"),
        depth=4, mode="eval", verbose=0, device="cpu",
    )  # fmt: skip
    write_text(out / "model_summary.txt", str(table) + "\n")
    for name in ("config.yaml", "model_summary.txt"):
        mlflow.log_artifact(str(out / name))


def _costs(module, datamodule, device: torch.device, memory: TrainingMemory) -> dict:
    """Inference latency on the first test example, served as the test loader serves it (a
    text cut to its own length): its median and interquartile range; and the training step's
    tensor memory (convrec.costs)."""
    example = datamodule.datasets["test"].__getitems__([0])
    x, *rest, _ = (t.to(device) for t in example)
    module.to(device).eval()
    timed = latency(lambda: module.predict(x, *rest), device)
    costs = {
        "latency_ms": round(timed.median_ms, 4),
        "latency_iqr_ms": round(timed.iqr_ms, 4),
        "memory_mb": round(memory.megabytes, 3) if memory.megabytes is not None else None,
    }
    if memory.cuda_peak_megabytes is not None:
        costs["cuda_peak_mb"] = round(memory.cuda_peak_megabytes, 1)
    return costs


def _write_confusion(confusion: torch.Tensor, spec: IOSpec, path: Path) -> None:
    """Rows: the true class, columns: the predicted one, by class name where the task has them."""
    names = list(spec.class_names)
    if len(names) != len(confusion):
        names = [str(i) for i in range(len(confusion))]
    table = pd.DataFrame(confusion.numpy(), index=pd.Index(names, name="true"), columns=names)
    write_text(path, table.to_csv())


def _summarise(cfg, family, net, lit_class, out, test_metrics, fit_seconds, trainer) -> dict:
    # Read back from history.csv: under ddp_spawn the callback lived in a child process.
    name, key, scale, higher_is_better = lit_class.headline
    rows = read_history(out / "history.csv")
    best = max if lit_class.monitor_mode == "max" else min
    scores = [float(r[lit_class.monitor]) for r in rows if r[lit_class.monitor] != ""]
    best_val = best(scores) if scores else None  # None: the task has no validation split
    samples = sum(int(r["samples"]) for r in rows)
    batch_seconds = sum(float(r["train_seconds"]) for r in rows)
    return {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "family": family,
        "metric": name,
        "metric_key": key,
        "value": _round(float(test_metrics[key]) * scale),
        "higher_is_better": higher_is_better,
        "params": count_parameters(net),
        "train_seconds": round(fit_seconds, 3),
        "samples_per_second": round(samples / batch_seconds, 1) if batch_seconds else 0.0,
        "epochs": len(rows),
        "best_val": _round(best_val * scale) if best_val is not None else None,
        "test": {k: float(v) for k, v in test_metrics.items()},
        "profile": str(cfg.profile),
        "seed": int(cfg.seed),
        "device": str(trainer.strategy.root_device),
        "precision": str(trainer.precision),
        "world_size": trainer.world_size,
        "mlflow_run_id": mlflow.active_run().info.run_id,
    }


def _round(value: float) -> float:
    """Four significant decimals: 99.2400 for accuracies, 5.8e-05 for small losses."""
    return float(f"{value:.4g}") if abs(value) < 1 else round(value, 4)
