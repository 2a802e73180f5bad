"""Vanishing gradients: the norm of dLoss/dx_t against the step t, for recurrent and
convolutional sequence models on the adding problem, at initialisation and after training.

The seeds' claim: a vanilla RNN's gradient from the loss at the end shrinks geometrically
on its way back to early steps, while the LSTM's cell path and the TCN's dilated
convolutions carry it. The adding problem's answer depends on two marked steps, one in the
first tenth of the sequence, so the early steps' gradient is what training needs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress
from torch import nn

from convrec.atomic import write_text
from convrec.experiments import EXPERIMENTS
from convrec.figures import plt, save_png
from convrec.models import build_model
from convrec.models.spec import IOSpec


def adding_batch(size: int, length: int, generator: torch.Generator):
    """(N, 2, T) inputs: uniform values and a 0/1 marker on one step in the first tenth and
    one in the second half; targets: the sum of the two marked values."""
    values = torch.rand(size, length, generator=generator)
    first = torch.randint(0, max(1, length // 10), (size,), generator=generator)
    second = torch.randint(length // 2, length, (size,), generator=generator)
    markers = torch.zeros(size, length)
    markers[torch.arange(size), first] = 1.0
    markers[torch.arange(size), second] = 1.0
    return torch.stack([values, markers], dim=1), (values * markers).sum(dim=1)


def gradient_by_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(T,) mean over the batch of ||dLoss/dx_t|| (MSE loss; the model in train mode, so
    the gradient is the one training follows)."""
    x = x.clone().requires_grad_(True)
    model.train()
    nn.functional.mse_loss(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return x.grad.norm(dim=1).mean(dim=0)


def train(model: nn.Module, cfg: DictConfig, generator: torch.Generator) -> float:
    """`train_steps` Adam steps on fresh batches; the last step's loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss = torch.tensor(float("nan"))
    for _ in range(cfg.train_steps):
        x, y = adding_batch(cfg.batch_size, cfg.length, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return float(loss)


def measure(cfg: DictConfig, seed: int) -> tuple[pd.DataFrame, dict]:
    spec = IOSpec("sequence", (2, cfg.length), 0, target_kind="value")
    probe = adding_batch(cfg.batch_size, cfg.length, torch.Generator().manual_seed(seed + 1))
    rows, losses = [], {}
    with Progress() as progress:
        bar = progress.add_task("gradients", total=len(cfg.models))
        for name, entry in cfg.models.items():
            progress.update(bar, description=f"gradients: {name}")
            torch.manual_seed(seed)
            net = OmegaConf.to_container(entry.net) if "net" in entry else {}
            model = build_model(name, spec, **net)
            stages = {"init": gradient_by_step(model, *probe)}
            losses[f"{name}_final_mse"] = train(model, cfg, torch.Generator().manual_seed(seed))
            stages["trained"] = gradient_by_step(model, *probe)
            for stage, norms in stages.items():
                rows += [{"model": name, "stage": stage, "t": t, "grad_norm": float(v)}
                         for t, v in enumerate(norms)]  # fmt: skip
            progress.advance(bar)
    return pd.DataFrame(rows), losses


def conclusion(table: pd.DataFrame) -> tuple[str, dict]:
    """Each model's gradient at t=0 relative to its gradient at the last step, at init and
    after training: how much of the loss's gradient reaches the sequence's start."""
    last = table["t"].max()
    metrics = {}
    for (model, stage), rows in table.groupby(["model", "stage"], sort=False):
        by_t = rows.set_index("t")["grad_norm"]
        metrics[f"{model}_{stage}_t0_over_last"] = float(by_t[0] / by_t[last])
        metrics[f"{model}_{stage}_grad_t0"] = float(by_t[0])

    def listed(stage: str) -> str:
        return ", ".join(f"{m} {metrics[f'{m}_{stage}_t0_over_last']:.1e}"
                         for m in table["model"].unique())  # fmt: skip

    sentence = (
        f"||dL/dx_0|| / ||dL/dx_{last}||, at initialisation: {listed('init')}; after "
        f"training: {listed('trained')}."
    )
    return sentence, metrics


def plot(table: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, stage in zip(axes, ("init", "trained"), strict=True):
        for model, rows in table[table["stage"] == stage].groupby("model", sort=False):
            ax.plot(rows["t"], rows["grad_norm"].clip(lower=1e-30), label=model)
        ax.set_yscale("log")
        ax.set_xlabel("input step t")
        ax.set_title("at initialisation" if stage == "init" else "after training")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("||dLoss/dx_t|| (batch mean)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Gradient reaching each input step, adding problem")
    save_png(fig, path)


@EXPERIMENTS.register("gradients")
def run(cfg: DictConfig, out: Path, root: Path) -> dict:
    table, losses = measure(cfg.experiment, cfg.seed)
    sentence, metrics = conclusion(table)
    write_text(out / "gradients.csv", table.to_csv(index=False))
    plot(table, out / "gradients.png")
    return {"conclusion": sentence, "metrics": {**metrics, **losses}, "device": "cpu",
            "figure": "gradients.png", "table": "gradients.csv"}  # fmt: skip
