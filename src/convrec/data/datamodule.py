"""Serve a prepared task to Lightning: normalised tensors, plain DataLoaders."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from convrec.data.prepare import SPLITS, load_meta, load_split


class BatchIndexedDataset(TensorDataset):
    """A TensorDataset that serves a whole batch with one indexing operation.

    DataLoader calls `__getitems__` with a batch's indices when it exists; one
    fancy-index per tensor is many times faster than stacking single samples.
    """

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices)
        return [tensor[index] for tensor in self.tensors]


def keep_batch(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    """The batch is already collated by `__getitems__`."""
    return batch


class PreparedDataModule(L.LightningDataModule):
    def __init__(self, task_dir: Path, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.task_dir = Path(task_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.meta = load_meta(self.task_dir)
        self.datasets: dict[str, BatchIndexedDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        mean = torch.tensor(self.meta["normalize"]["mean"])
        std = torch.tensor(self.meta["normalize"]["std"])
        shape = (1, -1) + (1,) * (len(self.meta["input_shape"]) - 1)  # broadcast over channels
        for split in SPLITS:
            x, y = load_split(self.task_dir, split, verify_against=self.meta)
            x = (x.float() - mean.view(shape)) / std.view(shape)
            self.datasets[split] = BatchIndexedDataset(x, y)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
