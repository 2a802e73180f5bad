"""Parallelism: time per training step (forward + backward + update) and inference latency
against sequence length for recurrent, convolutional and scan sequence models.

The seeds' claim: an RNN steps through time one step after the other, while a convolution
sees every step at once, so the RNN's cost grows with T at a rate the hardware cannot hide.
The scan family (minGRU, minLSTM, S4D) is recurrent yet trains over every step at once; at
inference it can also run one step at a time, so its latency is measured in both modes.
Models with `match` are scaled to the reference model's parameter count, so the comparison
is at equal size, not at each model's default width.
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
    """`net` with the width `key` (a number, or a list of them) multiplied by `factor` (at
    least 1)."""
    widths = net[key]
    if isinstance(widths, list | tuple):
        return {**net, key: [max(1, round(width * factor)) for width in widths]}
    return {**net, key: max(1, round(widths * factor))}


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


def sequential_latency(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """A scan model's latency run one step at a time (ms; the same outputs as the parallel
    mode, convrec.models.scan); NaN for a model that has one mode only."""
    if getattr(model, "mode", None) != "parallel":
        return float("nan")
    model.mode = "sequential"
    try:
        return 1e3 * time_inference(model, x, repeats)
    finally:
        model.mode = "parallel"


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
                    "latency_sequential_ms": sequential_latency(model, x[:1], cfg.repeats),
                })  # fmt: skip
                progress.advance(bar)
    return pd.DataFrame(rows)


def conclusion(
    table: pd.DataFrame, baseline: str, device: str, recurrent: str | None = None
) -> tuple[str, dict]:
    """Each model's cost over `baseline`'s at the largest T, as metrics and one sentence; with
    `recurrent` (a step-by-step RNN), each scan model's training step over that RNN's too, and
    its latency one step at a time over its parallel latency."""
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
    families = longest["family"] if "family" in longest else pd.Series(dtype=str)
    scans = [name for name in others if families.get(name) == "scan"]
    if recurrent in longest.index and scans:
        for name in scans:
            ratios[f"{name}_over_{recurrent}_train"] = float(
                longest.loc[name, "train_step_ms"] / longest.loc[recurrent, "train_step_ms"]
            )
            ratios[f"{name}_sequential_over_parallel_latency"] = float(
                longest.loc[name, "latency_sequential_ms"] / longest.loc[name, "latency_ms"]
            )
        trains = ", ".join(f"{n} {ratios[f'{n}_over_{recurrent}_train']:.2f}x" for n in scans)
        steps = ", ".join(
            f"{n} {ratios[f'{n}_sequential_over_parallel_latency']:.1f}x" for n in scans
        )
        sentence += (
            f" Trained as a scan, a training step of the scan family (recurrent models) costs "
            f"{trains} a {recurrent} step; run one step at a time at inference, their latency "
            f"is {steps} their parallel latency."
        )
    return sentence, ratios


def beside_references(
    table: pd.DataFrame, references: list, device: torch.device, batch_size: int
) -> str:
    """Each published speed-up (`slow` step time / `fast` step time at length T) beside the
    same ratio measured here at that T, with a delta only where the protocol (device type,
    batch size) is the reference's."""
    lines = []
    for ref in references:
        at = table[table["T"] == ref.T].set_index("model")["train_step_ms"]
        ours = at[ref.slow] / at[ref.fast] if {ref.slow, ref.fast} <= set(at.index) else None
        same = ref.protocol.device == device.type and ref.protocol.batch_size == batch_size
        here = f"{ours:.1f}x" if ours is not None else f"not measured (no T={ref.T} here)"
        verdict = (f"delta {ours - ref.value:+.1f}x" if same and ours is not None else
                   f"different protocol ({ref.protocol.device}, batch {ref.protocol.batch_size} "
                   f"there; {device.type}, batch {batch_size} here): no delta")  # fmt: skip
        lines.append(f"{ref.fast} over {ref.slow}, training step at T={ref.T}: published "
                     f"{ref.value:g}x ({ref.source}); here {here}; {verdict}")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, device: str, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [("train_step_ms", "training step (ms, batch)"),
              ("latency_ms", "inference latency (ms, one sequence)")]  # fmt: skip
    for ax, (column, label) in zip(axes, panels, strict=True):
        for name, rows in table.groupby("model", sort=False):
            params = int(rows["params"].iloc[0])
            line, = ax.plot(rows["T"], rows[column], marker="o",
                            label=f"{name} ({params:,} params)")  # fmt: skip
            if column == "latency_ms" and rows["latency_sequential_ms"].notna().any():
                ax.plot(rows["T"], rows["latency_sequential_ms"], marker="x", linestyle="--",
                        color=line.get_color(), label=f"{name}, one step at a time")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    for ax in axes:  # the latency panel also names the scan models' step-by-step lines
        ax.legend(fontsize=7)
    fig.suptitle(f"Cost vs sequence length on {device}")
    save_png(fig, path)


@EXPERIMENTS.register("parallelism")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    nets = model_nets(cfg.experiment)
    table = measure(cfg.experiment, nets, device)
    name = device_name(device)
    sentence, ratios = conclusion(
        table, cfg.experiment.baseline, name, cfg.experiment.get("recurrent")
    )
    write_text(out / "parallelism.csv", table.to_csv(index=False))
    references = cfg.experiment.get("references") or []
    write_text(out / "references.txt",
               beside_references(table, references, device, cfg.experiment.batch_size))  # fmt: skip
    plot(table, name, out / "parallelism.png")
    return {"conclusion": sentence, "metrics": ratios, "device": name,
            "figure": "parallelism.png", "table": "parallelism.csv",
            "texts": ["references.txt"]}  # fmt: skip
