"""Per-epoch history (history.csv) and the measured training throughput."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from convrec.atomic import write_text


class EpochHistory(Callback):
    """Record the epoch metrics and the time spent in training batches.

    The timer runs from the start of a training epoch to its last batch, so
    validation is not counted as training time. The file is rewritten each
    epoch by rank 0, so it survives a crash and works under ddp_spawn, where
    this object lives in a child process.
    """

    def __init__(self, path: Path, keys: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.keys = keys
        self.rows: list[dict] = []
        self._start = self._last = 0.0
        self._samples = 0

    def state_dict(self) -> dict:  # in the checkpoint: a resumed run keeps the earlier epochs
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # a training batch is a chunk of batches (convrec.data.datamodule.BatchChunks)
        self._samples += sum(len(b[-1]) for b in batch) * trainer.world_size
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1}
        row.update({key: float(metrics[key]) if key in metrics else "" for key in self.keys})
        row["samples"] = self._samples
        row["train_seconds"] = round(self._last - self._start, 4)
        self.rows.append(row)
        if trainer.is_global_zero:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(self.rows)
            write_text(self.path, buffer.getvalue())


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
