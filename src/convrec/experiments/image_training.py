"""What the image experiments (claims 3-5) share: a prepared image task's first samples,
a short training loop that records accuracy as it goes, and the run over an experiment's
variants, each trained from the same seed.

These experiments train many small variants of one model for a few hundred steps each;
a plain loop keeps that to seconds per variant, where a Lightning Trainer's setup per
variant would cost more than the training. The models are the lab's own (`build_model`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig
from rich.progress import Progress
from torch import nn

from convrec.data.datamodule import PreparedDataModule
from convrec.models import build_model
from convrec.models.spec import IOSpec


@dataclass
class ImageData:
    spec: IOSpec
    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def load_images(task_dir: Path, train_size: int, test_size: int) -> ImageData:
    """The first `train_size` training and `test_size` test images of a prepared task,
    normalised as training sees them."""
    datamodule = PreparedDataModule(task_dir, 1, 0, {"train": train_size, "test": test_size})
    datamodule.setup()
    train, test = (datamodule.datasets[s].tensors for s in ("train", "test"))
    return ImageData(IOSpec.from_meta(datamodule.meta), (train[0], train[-1]), (test[0], test[-1]))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Percent correct, in eval mode (dropout off), batch by batch."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(x), batch_size):
        predicted = model(x[start : start + batch_size].to(device)).argmax(1).cpu()
        correct += int((predicted == y[start : start + batch_size]).sum())
    return 100.0 * correct / len(x)


def fit(
    model: nn.Module,
    data: ImageData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    evals_per_epoch: int = 1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Adam on cross-entropy; `evals_per_epoch` times an epoch, the accuracy on the test
    images and on as many training images (the overfitting gap is their difference).
    One row per evaluation: step, samples seen, epoch (fractional), train loss since the
    last evaluation, train_acc, test_acc."""
    device = next(model.parameters()).device
    x, y = data.train
    train_probe = (x[: len(data.test[0])], y[: len(data.test[0])])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(x) // batch_size)
    eval_at = {round(steps_per_epoch * (k + 1) / evals_per_epoch) for k in range(evals_per_epoch)}
    task = progress.add_task("  steps", total=epochs * steps_per_epoch) if progress else None
    rows, losses, step = [], [], 0
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i, start in enumerate(range(0, len(x), batch_size), start=1):
            index = order[start : start + batch_size]
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[index].to(device)), y[index].to(device))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if progress:
                progress.advance(task)
            if i in eval_at:
                rows.append({
                    "step": step,
                    "samples": min(step * batch_size, (epoch + 1) * len(x)),
                    "epoch": epoch + i / steps_per_epoch,
                    "train_loss": sum(losses) / len(losses),
                    "train_acc": accuracy(model, *train_probe),
                    "test_acc": accuracy(model, *data.test),
                })  # fmt: skip
                losses = []
    if progress:
        progress.remove_task(task)
    return pd.DataFrame(rows)


def train_each(
    title: str,
    variants: dict[Hashable, tuple[str, dict]],
    data: ImageData,
    cfg: DictConfig,
    seed: int,
    device: torch.device,
) -> Iterator[tuple[Hashable, nn.Module, pd.DataFrame]]:
    """Build and `fit` each variant (key -> model family and its settings) with the
    experiment's epochs, batch size, learning rate and `evals_per_epoch` (1 when unset),
    reseeding before each so that only the variant differs; yields key, trained model and
    its learning curve, under one progress bar."""
    with Progress() as progress:
        bar = progress.add_task(title, total=len(variants))
        for key, (family, net) in variants.items():
            label = ", ".join(key) if isinstance(key, tuple) else key
            progress.update(bar, description=f"{title}: {label}")
            torch.manual_seed(seed)
            model = build_model(family, data.spec, **net).to(device)
            curve = fit(model, data, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                        seed=seed, evals_per_epoch=cfg.get("evals_per_epoch", 1),
                        progress=progress)  # fmt: skip
            yield key, model, curve
            progress.advance(bar)
