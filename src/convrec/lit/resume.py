"""checkpoints/last.ckpt: where an interrupted run resumes from.

Lightning's checkpoint holds the weights, the optimizer, the scheduler, the loops' progress and
each callback's state, but not the random number generators (dropout, the order a DataLoader
seeds its iterator with). This callback adds them, and puts them back at the start of the first
epoch after a resume, so that on a CPU the resumed run draws exactly what the uninterrupted
run drew: the same weights, the same metrics.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def rng_states() -> dict:
    """Every generator's state, as tensors and plain numbers: a checkpoint loads with
    torch.load(weights_only=True), which unpickles nothing else."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, words, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["gauss"]))  # fmt: skip
    python = states["python"]
    random.setstate((python["version"], tuple(python["words"].tolist()), python["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumePoint(Callback):
    """Save `path` (last.ckpt) at the end of an epoch once `seconds` have passed since the last
    save (0: every epoch; epochs of a fraction of a second would otherwise spend their time
    writing checkpoints), with the generators' states; written beside and renamed into place,
    so a kill never leaves half a checkpoint. It comes after the history callback in the
    callback list: the checkpoint holds the row of the epoch that just ended."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = Path(path)
        self.seconds = seconds
        self.earlier_seconds = 0.0  # fit time spent before the resume (by the killed process)
        self.resumed_at: int | None = None  # the epoch (from 1) a resumed fit went on from
        self._started = self._saved_at = time.perf_counter()
        self._pending: dict | None = None

    @property
    def state_key(self) -> str:
        return "ResumePoint"

    def state_dict(self) -> dict:
        elapsed = self.earlier_seconds + time.perf_counter() - self._started
        return {"rng": rng_states(), "fit_seconds": elapsed}

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict["rng"]
        self.earlier_seconds = float(state_dict["fit_seconds"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._saved_at = time.perf_counter()
        if self._pending is not None:
            self.resumed_at = trainer.current_epoch + 1
            if trainer.is_global_zero:
                print(f"convrec: resuming at epoch {self.resumed_at} of {trainer.max_epochs} "
                      f"from {self.path}", flush=True)  # fmt: skip

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:  # the generators as they were when last.ckpt was saved
            set_rng_states(self._pending)
            self._pending = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # every process takes the main one's decision: saving is collective under DDP
        due = trainer.strategy.broadcast(time.perf_counter() - self._saved_at >= self.seconds)
        if not due:
            return
        staged = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(staged)
        if trainer.is_global_zero:
            os.replace(staged, self.path)
        self._saved_at = time.perf_counter()
