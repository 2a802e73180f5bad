"""Several seeds of one (task, model) in one process: start-up is paid once.

`pipelines/train.py ... seeds=3` trains seeds `seed`, `seed + 1`, `seed + 2` one after the other
through `convrec.training.train`, each into results/<task>/<model>/seeds/<seed>/ with its own
MLflow run nested under one parent run for the pair. The parent and the aggregate
results/<task>/<model>/metrics.json hold the mean, the standard deviation and the 95%
confidence interval of the headline metric and of the costs (convrec.results). A seed that
diverges is recorded as such (its run FAILED) and the others go on; the folder is published in
one rename when every seed has ended. Interrupted, the same command resumes: the seeds that
ended are kept, the one under way goes on from its last checkpoint (convrec.resume).
"""

from __future__ import annotations

import shutil

import mlflow
from omegaconf import DictConfig, OmegaConf

from convrec.atomic import write_json
from convrec.config_check import check_config, check_pair
from convrec.costs import flush_denormals
from convrec.errors import ConvrecError, Diverged
from convrec.paths import project_root
from convrec.results import SEEDS_DIR, aggregate, read_run
from convrec.resume import partial_dir, read_state, resumable_dir, write_state
from convrec.tracking.mlflow_run import tracked_run, tracking_uri
from convrec.training import run_tags, train


def train_seeds(cfg: DictConfig) -> float:
    """Train `cfg.seeds` seeds; return the mean best validation score (what a sweep ranks)."""
    flush_denormals()  # before any tensor operation starts the CPU thread pool
    check_config(cfg)
    count = cfg.seeds
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConvrecError(f"seeds={count!r} is invalid: it must be an integer >= 1 (or null "
                           "for the one run of `seed`); pass seeds=<n>")  # fmt: skip
    if not one_device(cfg.trainer.get("devices", 1)) or cfg.trainer.get("num_nodes", 1) != 1:
        raise ConvrecError("seeds=<n> trains its seeds one after the other in one process; "
                           "on several devices train one seed per command (seed=<n>)")  # fmt: skip
    root = project_root()
    check_pair(cfg, root / cfg.paths.prepared)  # before the parent run opens
    task, model = cfg.task.name, cfg.model.name
    seeds = [int(cfg.seed) + i for i in range(count)]
    uri = tracking_uri(cfg.tracking.uri, root)
    tags = run_tags(cfg, root) | {"seeds": ",".join(map(str, seeds))}
    final = root / cfg.paths.results / task / model
    with resumable_dir(partial_dir(cfg, root), final) as out:
        state = read_state(out)  # after an interruption: the parent run, the seeds that diverged
        diverged = state.get("diverged", {})
        with tracked_run(uri, task, model, tags, None, resume=state.get("run_id")) as parent:
            write_state(out, {"run_id": parent, "diverged": diverged})
            runs = []
            for number, seed in enumerate(seeds, start=1):
                folder = out / SEEDS_DIR / str(seed)
                if str(seed) in diverged:  # ended before an interruption: not trained again
                    runs.append({"seed": seed, "status": "diverged", "error": diverged[str(seed)]})
                    continue
                if (folder / "metrics.json").is_file():
                    print(f"convrec: {task}/{model} seed {seed} finished before; kept", flush=True)
                    runs.append(read_run(folder / "metrics.json"))
                    continue
                print(f"convrec: {task}/{model} seed {seed} ({number} of {count})", flush=True)
                seed_cfg = OmegaConf.merge(cfg, {"seed": seed, "seeds": None})
                try:
                    train(seed_cfg, into=folder, parent_run=parent)
                    runs.append(read_run(folder / "metrics.json"))
                except Diverged as err:
                    print(f"convrec: {err}", flush=True)
                    # its partial files would read as a result (a history, a config); its FAILED
                    # MLflow run keeps what it logged
                    shutil.rmtree(folder, ignore_errors=True)
                    runs.append({"seed": seed, "status": "diverged", "error": str(err)})
                    diverged[str(seed)] = str(err)
                    write_state(out, {"run_id": parent, "diverged": diverged})
            summary = aggregate(runs, mlflow_run_id=parent)
            write_json(out / "metrics.json", summary)
            mlflow.log_metrics(parent_metrics(summary))
            mlflow.log_artifact(str(out / "metrics.json"))
    if summary["diverged"] == count:
        raise Diverged(f"every seed of {task}/{model} diverged ({count} of {count}); "
                       "lower model.lr or set trainer.gradient_clip_val")  # fmt: skip
    best = summary.get("best_val")
    return float(best) if best is not None else float("nan")


def one_device(devices) -> bool:
    """Whether Lightning's `devices` setting trains in one process: 1, one listed device, or
    "auto" where at most one GPU is visible ("auto" takes every GPU there is)."""
    listed = OmegaConf.is_list(devices) or isinstance(devices, list | tuple)
    if devices in (None, 1, "1") or (listed and len(devices) == 1):
        return True
    if devices == "auto":
        import torch

        return torch.cuda.device_count() <= 1
    return False


def parent_metrics(summary: dict) -> dict[str, float]:
    """What the parent run holds: the headline's mean, std and CI, and each cost's mean (under
    the run's own name, as on a single run) with its std and CI."""
    keys = ("value", "value_mean", "value_std", "value_ci95", "seeds", "diverged", "params")
    metrics = {key: summary.get(key) for key in keys}
    for key, spread in summary["spread"].items():
        metrics[key] = summary.get(key)
        metrics |= {f"{key}_{name}": value for name, value in spread.items()}
    return {key: float(value) for key, value in metrics.items() if value is not None}
