"""Parameter economy: MLPs against CNNs on images, parameters against accuracy.

The seeds' argument: a fully connected layer joins every pixel to every unit, so its weights
grow with the image's area, while a convolution's kernel is shared across positions and
its count does not depend on the image at all. Measured here two ways: accuracy per
parameter at MNIST's size, and parameter counts of the same models built for larger inputs.
The lab's CNN flattens its last feature map into a fully connected head, so that head grows
with the input too; the counts show by how much, layer by layer.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchinfo import summary

from convrec.atomic import write_text
from convrec.experiments import EXPERIMENTS
from convrec.experiments.devices import device_name, pick_device
from convrec.experiments.image_training import load_images, train_each
from convrec.figures import plt, save_png
from convrec.models import build_model, count_parameters
from convrec.models.spec import IOSpec

FAMILIES = ("mlp", "cnn")


def nets(cfg: DictConfig, family: str) -> dict[str, dict]:
    """A family's sizes, smallest first: label (what the size sets) -> the model's settings."""
    base = OmegaConf.to_container(cfg.base[family])
    sizes = [OmegaConf.to_container(size) for size in cfg.sizes[family]]
    return {" ".join(f"{k}={v}" for k, v in size.items()): {**base, **size} for size in sizes}


def measure(cfg: DictConfig, task_dir: Path, seed: int, device: torch.device) -> pd.DataFrame:
    data = load_images(task_dir, cfg.train_size, cfg.test_size)
    variants = {(f, label): (f, net) for f in FAMILIES for label, net in nets(cfg, f).items()}
    return pd.DataFrame(
        {"family": family, "size": label, "params": count_parameters(model),
         "test_acc": float(curve["test_acc"].iloc[-1])}
        for (family, label), model, curve in
        train_each("parameter economy", variants, data, cfg, seed, device)
    )  # fmt: skip


def largest(cfg: DictConfig, side: int) -> dict[str, nn.Module]:
    """Each family's largest model, built for a `side` x `side` grey image."""
    spec = IOSpec("image", (1, side, side), 10)
    return {f: build_model(f, spec, **list(nets(cfg, f).values())[-1]) for f in FAMILIES}


def first_linear(model: nn.Module) -> int:
    """Parameters of the model's first fully connected layer: where the flattened input (or
    feature map) meets the units."""
    layer = next(m for m in model.modules() if isinstance(m, nn.Linear))
    return sum(p.numel() for p in layer.parameters())


def conv_parameters(model: nn.Module) -> int:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return sum(p.numel() for m in convs for p in m.parameters())


def growth(cfg: DictConfig) -> pd.DataFrame:
    """The largest models' parameter counts at each input size: in all, in the first fully
    connected layer, in the conv layers."""
    return pd.DataFrame(
        {"family": family, "side": side, "params": count_parameters(model),
         "first_linear": first_linear(model), "conv": conv_parameters(model)}
        for side in cfg.resolutions
        for family, model in largest(cfg, side).items()
    )  # fmt: skip


def layer_table(model: nn.Module, side: int) -> str:
    table = summary(model, input_size=(1, 1, side, side), col_names=("output_size", "num_params"),
                    depth=4, verbose=0, device="cpu")  # fmt: skip
    return str(table) + "\n"


def conclusion(table: pd.DataFrame, sizes: pd.DataFrame) -> tuple[str, dict]:
    best = {f: table[table["family"] == f].sort_values("test_acc").iloc[-1] for f in FAMILIES}
    # the smallest CNN that matches the best MLP: the parameters a CNN needs for that accuracy
    matching = table[(table["family"] == "cnn") & (table["test_acc"] >= best["mlp"].test_acc)]
    small, large = sizes["side"].min(), sizes["side"].max()
    at = sizes.set_index(["family", "side"])
    metrics = {f"{f}_best_test_acc": float(best[f].test_acc) for f in FAMILIES}
    metrics |= {f"{f}_best_params": int(best[f].params) for f in FAMILIES}
    for f in FAMILIES:
        metrics[f"{f}_params_growth_{small}_to_{large}"] = float(
            at.loc[(f, large), "params"] / at.loc[(f, small), "params"]
        )
    if len(matching):
        cnn = matching.sort_values("params").iloc[0]
        metrics["mlp_over_cnn_params_at_equal_acc"] = float(best["mlp"].params / cnn.params)
        match = (f"the smallest CNN that matches it has {cnn.params:,} ({cnn.test_acc:.1f}%), "
                 f"{best['mlp'].params / cnn.params:.0f}x fewer")  # fmt: skip
    else:
        match = f"no CNN matched it (best CNN {best['cnn'].test_acc:.1f}%)"
    sentence = (
        f"The best MLP reached {best['mlp'].test_acc:.1f}% with {best['mlp'].params:,} "
        f"parameters; {match}. Built for {large}x{large} instead of {small}x{small} inputs, the "
        f"largest MLP grows {metrics[f'mlp_params_growth_{small}_to_{large}']:.0f}x and the "
        f"largest CNN {metrics[f'cnn_params_growth_{small}_to_{large}']:.0f}x (its conv layers "
        f"stay at {int(at.loc[('cnn', large), 'conv']):,}; its flattening head grows)."
    )
    return sentence, metrics


def plot(table: pd.DataFrame, sizes: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for family, rows in table.groupby("family", sort=False):
        axes[0].plot(rows["params"], rows["test_acc"], marker="o", label=family)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("trainable parameters")
    axes[0].set_ylabel("test accuracy (%)")
    for family, rows in sizes.groupby("family", sort=False):
        axes[1].plot(rows["side"], rows["params"], marker="o", label=f"{family} (largest)")
        if family == "cnn":
            axes[1].plot(rows["side"], rows["conv"], marker=".", linestyle=":",
                         label="cnn: conv layers only")  # fmt: skip
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("input side (pixels)")
    axes[1].set_ylabel("parameters")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("Parameters against accuracy, and against the input's size")
    save_png(fig, path)


@EXPERIMENTS.register("parameter_economy")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    exp = cfg.experiment
    device = pick_device(cfg.device)
    table = measure(exp, root / cfg.paths.prepared / exp.task, cfg.seed, device)
    sizes = growth(exp)
    sentence, metrics = conclusion(table, sizes)
    write_text(out / "parameter_economy.csv", table.to_csv(index=False))
    write_text(out / "parameter_growth.csv", sizes.to_csv(index=False))
    write_text(out / "parameter_economy.txt", table.to_string(index=False) + "\n")
    write_text(out / "parameter_growth.txt", sizes.to_string(index=False) + "\n")
    side = min(exp.resolutions)
    texts = ["parameter_economy.txt", "parameter_growth.txt"]  # then each layer table
    for family, model in largest(exp, side).items():
        texts.append(f"{family}_layers.txt")
        write_text(out / texts[-1], layer_table(model, side))
    plot(table, sizes, out / "parameter_economy.png")
    return {"conclusion": sentence, "metrics": metrics, "device": device_name(device),
            "figure": "parameter_economy.png", "table": "parameter_economy.csv",
            "texts": texts}  # fmt: skip
