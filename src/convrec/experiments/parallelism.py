"""Parallelism: time per training step (forward + backward + update) and inference latency
against sequence length for recurrent and convolutional sequence models.

The seeds' claim: an RNN steps through time one step after the other, while a convolution
sees every step at once, so the RNN's cost grows with T at a rate the hardware cannot hide.
Convolutional models are scaled to the reference model's parameter count (`match`), so the
comparison is at equal size, not at each model's default width.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress
from torch import nn

from convrec.atomic import write_text
from convrec.costs import median_seconds
from convrec.errors import ConvrecError
from convrec.experiments import EXPERIMENTS
from convrec.experiments.devices import device_name, pick_device
from convrec.figures import plt, save_png
from convrec.models import build_model, count_parameters
from convrec.models.spec import IOSpec


def sequence_spec(channels: int, length: int, classes: int) -> IOSpec:
    return IOSpec("sequence", (channels, length), classes)


def scaled(net: Mapping, key: str, factor: float) -> dict:
    """`net` with every width of the list `key` multiplied by `factor` (at least 1)."""
    return {**net, key: [max(1, round(width * factor)) for width in net[key]]}


def match_params(name: str, spec: IOSpec, net: Mapping, key: str, target: int) -> dict:
    """Scale the widths `key` of model `name` so its parameter count is closest to
    `target` (bisection on the factor: parameters grow with width)."""
    low, high = 1e-3, 64.0
    for _ in range(40):
        middle = (low * high) ** 0.5
        params = count_parameters(build_model(name, spec, **scaled(net, key, middle)))
        low, high = (middle, high) if params < target else (low, middle)
    candidates = [scaled(net, key, low), scaled(net, key, high)]
    return min(
        candidates, key=lambda n: abs(count_parameters(build_model(name, spec, **n)) - target)
    )


def time_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward + optimiser step, after one warm-up step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return median_seconds(step, x.device, repeats, warmup=1)


@torch.no_grad()
def time_inference(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward pass in eval mode, after one warm-up pass."""
    model.eval()
    return median_seconds(lambda: model(x), x.device, repeats, warmup=1)


def model_nets(cfg: DictConfig) -> dict[str, dict]:
    """Each model's `net` as the experiment gives it (the rest: the model's defaults), the
    ones with `match` scaled to the reference's parameter count. The experiment holds its
    own sizes so that editing a training config does not rerun the bench."""
    spec = sequence_spec(cfg.channels, max(cfg.lengths), cfg.classes)
    nets = {name: OmegaConf.to_container(entry.net) if "net" in entry else {}
            for name, entry in cfg.models.items()}  # fmt: skip
    if cfg.reference not in nets:
        raise ConvrecError(
            f"experiment parallelism: reference {cfg.reference!r} is not one of the models "
            f"{list(nets)}; fix conf/experiment/parallelism.yaml"
        )
    target = count_parameters(build_model(cfg.reference, spec, **nets[cfg.reference]))
    for name, entry in cfg.models.items():
        if entry.get("match"):
            nets[name] = match_params(name, spec, nets[name], entry.match, target)
    return nets


def measure(cfg: DictConfig, nets: Mapping[str, dict], device: torch.device) -> pd.DataFrame:
    rows = []
    with Progress() as progress:
        bar = progress.add_task("parallelism", total=len(nets) * len(cfg.lengths))
        for length in cfg.lengths:
            spec = sequence_spec(cfg.channels, length, cfg.classes)
            x = torch.randn(cfg.batch_size, cfg.channels, length, device=device)
            y = torch.randint(cfg.classes, (cfg.batch_size,), device=device)
            for name, net in nets.items():
                progress.update(bar, description=f"{name} T={length}")
                model = build_model(name, spec, **net).to(device)
                rows.append({
                    "model": name, "family": model.family, "T": length,
                    "params": count_parameters(model),
                    "train_step_ms": 1e3 * time_train_step(model, x, y, cfg.repeats),
                    "latency_ms": 1e3 * time_inference(model, x[:1], cfg.repeats),
                })  # fmt: skip
                progress.advance(bar)
    return pd.DataFrame(rows)


def conclusion(table: pd.DataFrame, baseline: str, device: str) -> tuple[str, dict]:
    """Each model's cost over `baseline`'s at the largest T, as metrics and one sentence."""
    longest = table[table["T"] == table["T"].max()].set_index("model")
    others = [name for name in longest.index if name != baseline]
    ratios = {}
    for column, kind in (("train_step_ms", "train"), ("latency_ms", "latency")):
        for name in others:
            ratios[f"{name}_over_{baseline}_{kind}"] = float(
                longest.loc[name, column] / longest.loc[baseline, column]
            )

    def listed(kind: str) -> str:
        return ", ".join(f"{name} {ratios[f'{name}_over_{baseline}_{kind}']:.1f}x"
                         for name in others)  # fmt: skip

    sentence = (
        f"At T={int(table['T'].max())} on {device}, against the {baseline} at matched size, "
        f"a training step costs {listed('train')}; inference latency (one sequence) "
        f"{listed('latency')}."
    )
    return sentence, ratios


def plot(table: pd.DataFrame, device: str, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [("train_step_ms", "training step (ms, batch)"),
              ("latency_ms", "inference latency (ms, one sequence)")]  # fmt: skip
    for ax, (column, label) in zip(axes, panels, strict=True):
        for name, rows in table.groupby("model", sort=False):
            params = int(rows["params"].iloc[0])
            ax.plot(rows["T"], rows[column], marker="o", label=f"{name} ({params:,} params)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Cost vs sequence length on {device}")
    save_png(fig, path)


@EXPERIMENTS.register("parallelism")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    nets = model_nets(cfg.experiment)
    table = measure(cfg.experiment, nets, device)
    name = device_name(device)
    sentence, ratios = conclusion(table, cfg.experiment.baseline, name)
    write_text(out / "parallelism.csv", table.to_csv(index=False))
    plot(table, name, out / "parallelism.png")
    return {"conclusion": sentence, "metrics": ratios, "device": name,
            "figure": "parallelism.png", "table": "parallelism.csv"}  # fmt: skip
