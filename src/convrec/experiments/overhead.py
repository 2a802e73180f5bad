"""Overhead: what the lab's training path costs over a plain PyTorch loop doing the same work.

The limit a training run can reach is a loop that does nothing but train: batches cut from
tensors in memory, forward, backward, step, and a validation pass per epoch. Both paths here
train the same model (same seed, so the same initial weights) on the same prepared data, in
the same batch order (the seeded permutation the lab's datamodule draws each epoch), with the
same optimizer and schedule (both instantiated from the run's config, so a faster optimizer
helps both), the same epochs, a validation pass after each, the best epoch by validation
tested. The lab's path is `convrec.training.train`, the function a DVC train stage runs,
with everything it does during fit: Lightning, the MLflow logger and system metrics, the
checkpoint, the history and the progress bar. Only `fit` is timed on both sides (the data is
in memory before either clock starts); the paths alternate, and each time is the median of
`repeats`. Everything runs in one worker process with its own MLflow state (the bench's run
stays open in the parent) and its own scratch store and results.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DistributedSampler

from convrec.atomic import write_text
from convrec.compose import compose_config
from convrec.errors import ConvrecError
from convrec.experiments import EXPERIMENTS
from convrec.figures import plt, save_png

CONVREC, PLAIN = "convrec", "plain"
WARMUP_BATCHES = 8  # OneCycleLR needs pct_start * steps > 1
ACCELERATORS = {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}  # bench device -> trainer


def case_config(root: Path, case: DictConfig, scratch: Path, bench: DictConfig,
                shared: list[str] = ()) -> dict:  # fmt: skip
    """The training config of one case, as `pipelines/train.py` would compose it from the
    case's overrides and then `shared`, writing into `scratch` and reading the project's
    prepared data."""
    overrides = [
        f"task={case.task}", f"model={case.model}", *case.get("overrides", []), *shared,
        f"trainer.accelerator={ACCELERATORS[str(bench.device)]}",
        f"paths.prepared={(root / bench.paths.prepared).resolve()}",
        f"paths.results={scratch / 'results'}", f"paths.partial={scratch / 'partial'}",
        f"tracking.uri=sqlite:///{scratch / 'mlflow.db'}",
        "tracking.system_metrics_interval=5",
    ]  # fmt: skip
    return OmegaConf.to_container(compose_config(root / "conf", "train", overrides))


def plain_fit(cfg: DictConfig, root: Path, device: torch.device, precision: str
              ) -> tuple[float, float]:  # fmt: skip
    """Train as a plain loop; (seconds in the loop, the best validation epoch's headline test
    metric: accuracy in percent, or the MSE). The trainer's `limit_*_batches` cut each split
    as they cut the lab's loaders (convrec.data.datamodule.batch_count)."""
    from convrec.data.datamodule import batch_count
    from convrec.models import build_model
    from convrec.models.spec import IOSpec
    from convrec.training import datamodule_for

    data = datamodule_for(cfg, root)
    data.load(device)
    spec = IOSpec.from_meta(data.meta)
    if spec.target_kind not in ("class", "value") or data.datasets["train"].trim:
        raise ConvrecError(
            f"experiment overhead: task {cfg.task.name} ({spec.target_kind} targets) is not "
            "one the plain loop writes; use a task with class or value targets and no tokens"
        )
    classes = spec.target_kind == "class"
    loss_fn = nn.CrossEntropyLoss() if classes else nn.MSELoss()
    torch.manual_seed(cfg.seed)  # what seed_everything sets before the lab builds the model
    net = build_model(cfg.model.name, spec, **OmegaConf.to_container(cfg.model.net)).to(device)
    train = data.datasets["train"]
    batch_size, epochs = int(cfg.task.batch_size), int(cfg.trainer.max_epochs)
    batches = {split: batch_count(-(-len(data.datasets[split]) // batch_size),
                                  data.batches.get(split), split)
               for split in ("train", "val", "test")}  # fmt: skip
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer, total_steps=epochs * batches["train"])
    clip = cfg.trainer.get("gradient_clip_val")
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=cfg.seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=precision.startswith("bf16"))  # fmt: skip

    def score(split: str) -> float:
        net.eval()
        tensors = data.datasets[split].tensors
        total, count = 0.0, 0
        with torch.inference_mode(), autocast:
            for start in range(0, len(tensors[0]), batch_size)[: batches[split]]:
                x, *rest, y = (t[start : start + batch_size] for t in tensors)
                out = net(x, *rest).float()
                hits = (out.argmax(1) == y).sum() if classes else loss_fn(out, y.float()) * len(y)
                total += float(hits)
                count += len(y)
        return 100.0 * total / count if classes else total / count

    started = time.perf_counter()
    best, best_state = None, None
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), device=device)
        net.train()
        for start in range(0, batches["train"] * batch_size, batch_size):
            x, *rest, y = (t[order[start : start + batch_size]] for t in train.tensors)
            with autocast:
                loss = loss_fn(net(x, *rest).float(), y if classes else y.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
            scheduler.step()
        value = score("val")
        if best is None or (value > best if classes else value < best):
            best, best_state = value, copy.deepcopy(net.state_dict())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    net.load_state_dict(best_state)
    return seconds, score("test")


def warmup(config: dict) -> DictConfig:
    """The case cut to one epoch of a few batches: the first fit of each path pays for lazy
    imports and kernel selection, and is not timed."""
    cfg = OmegaConf.create(config)
    cfg.trainer.max_epochs = 1
    for split in ("train", "val", "test"):
        cfg.trainer[f"limit_{split}_batches"] = WARMUP_BATCHES
    return cfg


def convrec_fit(cfg: DictConfig, root: Path) -> dict:
    """One run through the lab's training path; its metrics.json."""
    from convrec.training import train

    train(cfg)
    return json.loads((Path(cfg.paths.results) / cfg.task.name / cfg.model.name /
                       "metrics.json").read_text())  # fmt: skip


def measure(configs: dict[str, dict], root: Path, repeats: int) -> pd.DataFrame:
    """In the worker process: every case, both paths alternated, `repeats` times each.
    Progress is a line per fit (the lab's path draws Lightning's own bars)."""
    rows = []
    for number, (case, config) in enumerate(configs.items(), start=1):
        cfg = OmegaConf.create(config)
        # the device and precision the lab's path picked are the plain loop's too
        setup = convrec_fit(warmup(config), root)
        device, precision = torch.device(setup["device"]), setup["precision"]
        plain_fit(warmup(config), root, device, precision)
        for rep in range(repeats):
            for path in (CONVREC, PLAIN) if rep % 2 == 0 else (PLAIN, CONVREC):
                if path == CONVREC:
                    metrics = convrec_fit(OmegaConf.create(config), root)
                    seconds, value = metrics["train_seconds"], metrics["value"]
                else:
                    seconds, value = plain_fit(cfg, root, device, precision)
                print(f"overhead [{number}/{len(configs)}] {case} {path} {rep + 1}/{repeats}: "
                      f"fit {seconds:.2f} s, {setup['metric']} {value:.4g}", flush=True)
                rows.append({"case": case, "task": cfg.task.name, "model": cfg.model.name,
                             "path": path, "repeat": rep, "fit_seconds": seconds,
                             "value": value, "metric": setup["metric"],
                             "device": setup["device"], "precision": precision})  # fmt: skip
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict[str, dict]:
    """Per case: median fit seconds of each path, their ratio, and each path's headline
    metric (median over the repeats)."""
    models = {}
    for case, rows in table.groupby("case", sort=False):
        medians = rows.groupby("path")[["fit_seconds", "value"]].median()
        models[case] = {
            "task": rows["task"].iloc[0],
            "model": rows["model"].iloc[0],
            "metric": rows["metric"].iloc[0],
            "fit_ratio": float(medians.loc[CONVREC, "fit_seconds"] /
                               medians.loc[PLAIN, "fit_seconds"]),  # fmt: skip
            "convrec_seconds": float(medians.loc[CONVREC, "fit_seconds"]),
            "plain_seconds": float(medians.loc[PLAIN, "fit_seconds"]),
            "convrec_value": float(medians.loc[CONVREC, "value"]),
            "plain_value": float(medians.loc[PLAIN, "value"]),
            "repeats": int(rows["repeat"].nunique()),
        }
    return models


def conclusion(models: dict[str, dict], device: str) -> str:
    ratios = ", ".join(f"{case} {m['fit_ratio']:.2f}x" for case, m in models.items())
    values = "; ".join(
        f"{case} {m['convrec_value']:.4g} vs {m['plain_value']:.4g} ({m['metric']})"
        for case, m in models.items()
    )
    # no apostrophe: the report escapes it, and the sentence is looked up there as written
    return (f"On {device}, a fit through convrec took {ratios} the time of a plain PyTorch loop "
            f"doing the same work (medians); the headline test metric, convrec vs plain: "
            f"{values}.")  # fmt: skip


def plot(models: dict[str, dict], device: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    cases = list(models)
    positions = range(len(cases))
    paths = ((PLAIN, "plain PyTorch loop"), (CONVREC, "convrec (Lightning, MLflow)"))
    for offset, (key, label) in zip((-0.2, 0.2), paths, strict=True):
        ax.bar([p + offset for p in positions], [models[c][f"{key}_seconds"] for c in cases],
               width=0.4, label=label)  # fmt: skip
    for p, case in zip(positions, cases, strict=True):
        top = max(models[case]["plain_seconds"], models[case]["convrec_seconds"])
        ax.annotate(f"{models[case]['fit_ratio']:.2f}x", (p, top), ha="center", va="bottom")
    ax.set_xticks(list(positions), cases)
    ax.set_ylabel("fit seconds (median)")
    ax.set_title(f"Training-path overhead on {device}")
    ax.legend(fontsize=8)
    save_png(fig, path)


def device_label(table: pd.DataFrame) -> str:
    device = table["device"].iloc[0]
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))} ({table['precision'].iloc[0]})"
    return f"CPU ({torch.get_num_threads()} threads)"


@EXPERIMENTS.register("overhead")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    exp = cfg.experiment
    with tempfile.TemporaryDirectory(prefix="convrec-overhead-") as scratch:
        shared = list(exp.get("overrides", []))
        configs = {name: case_config(root, case, Path(scratch), cfg, shared)
                   for name, case in exp.cases.items()}  # fmt: skip
        # spawn: a fresh interpreter, not a fork of one holding an open MLflow run
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as worker:
            table = worker.submit(measure, configs, root, int(exp.repeats)).result()
    models = summarise(table)
    device = device_label(table)
    write_text(out / "overhead.csv", table.to_csv(index=False))
    plot(models, device, out / "overhead.png")
    metrics = {f"{case}_{key}": m[key] for case, m in models.items()
               for key in ("fit_ratio", "convrec_value", "plain_value")}  # fmt: skip
    return {"conclusion": conclusion(models, device), "metrics": metrics, "models": models,
            "device": device, "figure": "overhead.png", "table": "overhead.csv"}  # fmt: skip
