"""Pooling and dropout: how a CNN downsamples (max pooling, average pooling, strided
convolution) and whether it uses dropout, measured as test accuracy and overfitting gap.

The seeds' claims: max pooling keeps the strongest response of each window and gives some
translation invariance, average pooling blurs it, a strided convolution learns its own
downsampling; dropout trades training accuracy for test accuracy. A small training set
makes overfitting visible within a few epochs.
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
from convrec.models import count_parameters


def variants(cfg: DictConfig) -> dict[tuple[str, str], dict]:
    """(downsampling, dropout) -> the cnn's settings."""
    base = OmegaConf.to_container(cfg.net)
    return {
        (down, drop): {**base, **OmegaConf.to_container(d1), **OmegaConf.to_container(d2)}
        for down, d1 in cfg.downsampling.items()
        for drop, d2 in cfg.dropout.items()
    }


def measure(cfg: DictConfig, task_dir: Path, seed: int, device: torch.device) -> pd.DataFrame:
    data = load_images(task_dir, cfg.train_size, cfg.test_size)
    nets = {key: ("cnn", net) for key, net in variants(cfg).items()}
    return pd.concat(
        [curve.assign(downsampling=down, dropout=drop, params=count_parameters(model))
         for (down, drop), model, curve in train_each("pooling", nets, data, cfg, seed, device)],
        ignore_index=True,
    )  # fmt: skip


def final_scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: its last epoch's test accuracy, training accuracy and gap."""
    last = table.groupby(["downsampling", "dropout"], sort=False).tail(1)
    return last.assign(gap=(last["train_acc"] - last["test_acc"]).round(2))[
        ["downsampling", "dropout", "params", "train_acc", "test_acc", "gap"]
    ].reset_index(drop=True)


def conclusion(scores: pd.DataFrame) -> tuple[str, dict]:
    metrics = {
        f"{r.downsampling}_dropout_{r.dropout}_{k}": float(getattr(r, k))
        for r in scores.itertuples()
        for k in ("test_acc", "gap")
    }
    best = scores.loc[scores["test_acc"].idxmax()]
    by_dropout = scores.groupby("dropout", sort=False)[["test_acc", "gap"]].mean()
    on, off = by_dropout.loc["on"], by_dropout.loc["off"]
    sentence = (
        f"Best test accuracy: {best.downsampling} with dropout {best.dropout} "
        f"({best.test_acc:.1f}%); averaged over the three downsamplings, dropout changed the "
        f"overfitting gap from {off.gap:.1f} to {on.gap:.1f} points and test accuracy from "
        f"{off.test_acc:.1f}% to {on.test_acc:.1f}%."
    )
    return sentence, metrics


def plot(table: pd.DataFrame, scores: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    colours = dict(zip(scores["downsampling"].unique(), ("tab:blue", "tab:orange", "tab:green"),
                       strict=False))  # fmt: skip
    for (down, drop), rows in table.groupby(["downsampling", "dropout"], sort=False):
        style = "-" if drop == "on" else "--"
        axes[0].plot(rows["epoch"], rows["test_acc"], style, color=colours[down],
                     label=f"{down}, dropout {drop}")  # fmt: skip
        axes[0].plot(rows["epoch"], rows["train_acc"], style, color=colours[down], alpha=0.3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("accuracy (%): test (bold), train (faint)")
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3)
    labels = [f"{r.downsampling}\ndropout {r.dropout}" for r in scores.itertuples()]
    x = range(len(scores))
    axes[1].bar([i - 0.2 for i in x], scores["test_acc"], 0.4, label="test accuracy (%)")
    axes[1].bar([i + 0.2 for i in x], scores["gap"], 0.4, label="train - test (points)")
    axes[1].set_xticks(list(x), labels, fontsize=7)
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3, axis="y")
    fig.suptitle("Downsampling and dropout on a small training set: accuracy and overfitting")
    save_png(fig, path)


@EXPERIMENTS.register("pooling")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    exp = cfg.experiment
    device = pick_device(cfg.device)
    table = measure(exp, root / cfg.paths.prepared / exp.task, cfg.seed, device)
    scores = final_scores(table)
    sentence, metrics = conclusion(scores)
    write_text(out / "pooling.csv", table.to_csv(index=False))
    write_text(out / "pooling_final.csv", scores.to_csv(index=False))
    write_text(out / "pooling_final.txt", scores.to_string(index=False) + "\n")
    plot(table, scores, out / "pooling.png")
    return {"conclusion": sentence, "metrics": metrics, "device": device_name(device),
            "figure": "pooling.png", "table": "pooling_final.csv",
            "texts": ["pooling_final.txt"]}  # fmt: skip
