"""Activation functions: one deep plain CNN trained with ReLU, tanh and sigmoid.

The seeds' claim: sigmoid (and to a lesser degree tanh) saturate, so their derivatives
(at most 0.25 for sigmoid) shrink the gradient layer after layer and a deep network learns
slowly or not at all, while ReLU passes it through unchanged where it is active. Without
batch norm nothing rescales the activations between layers, so the claim is tested as stated.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from convrec.atomic import write_text
from convrec.experiments import EXPERIMENTS
from convrec.experiments.devices import device_name, pick_device
from convrec.experiments.image_training import load_images, train_each
from convrec.figures import plt, save_png


def measure(cfg: DictConfig, task_dir: Path, seed: int, device: torch.device) -> pd.DataFrame:
    data = load_images(task_dir, cfg.train_size, cfg.test_size)
    net = OmegaConf.to_container(cfg.net)
    variants = {a: ("cnn", {**net, "activation": a}) for a in cfg.activations}
    return pd.concat(
        [curve.assign(activation=a) for a, _, curve in
         train_each("activations", variants, data, cfg, seed, device)],
        ignore_index=True,
    )  # fmt: skip


def conclusion(table: pd.DataFrame, target: float) -> tuple[str, dict]:
    """Per activation: final test accuracy and training images seen to reach `target`."""
    metrics, parts = {}, []
    for activation, rows in table.groupby("activation", sort=False):
        final = float(rows["test_acc"].iloc[-1])
        reached = rows[rows["test_acc"] >= target]
        metrics[f"{activation}_final_test_acc"] = final
        if len(reached):
            samples = int(reached["samples"].iloc[0])
            metrics[f"{activation}_samples_to_target"] = samples
            parts.append(f"{activation} reached it after {samples:,} images and ended at "
                         f"{final:.1f}%")  # fmt: skip
        else:
            parts.append(f"{activation} never did (best {rows['test_acc'].max():.1f}%, final "
                         f"{final:.1f}%)")  # fmt: skip
    return f"Target {target:g}% test accuracy: " + "; ".join(parts) + ".", metrics


def plot(table: pd.DataFrame, target: float, depth: int, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for activation, rows in table.groupby("activation", sort=False):
        axes[0].plot(rows["samples"], rows["test_acc"], marker=".", label=activation)
        axes[1].plot(rows["samples"], rows["train_loss"], marker=".", label=activation)
    axes[0].axhline(target, color="gray", linestyle=":", label=f"target {target:g}%")
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("training loss (mean since the last point)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("training images seen")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"A {depth}-layer plain CNN with each activation, same seed")
    save_png(fig, path)


@EXPERIMENTS.register("activations")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    exp = cfg.experiment
    device = pick_device(cfg.device)
    table = measure(exp, root / cfg.paths.prepared / exp.task, cfg.seed, device)
    sentence, metrics = conclusion(table, exp.target)
    write_text(out / "activations.csv", table.to_csv(index=False))
    plot(table, exp.target, len(exp.net.channels), out / "activations.png")
    return {"conclusion": sentence, "metrics": metrics, "device": device_name(device),
            "figure": "activations.png", "table": "activations.csv"}  # fmt: skip
