"""Serve a prepared task to Lightning: normalised tensors, plain DataLoaders.

A batch is `[x, y]`, or `[x, lengths, y]` for variable-length tasks (x is
right-padded with zeros, also after normalisation, so padding reads as zeros).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from convrec.data.prepare import SPLITS, load_meta, load_split
from convrec.errors import ConvrecError


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
    def __init__(
        self,
        task_dir: Path,
        batch_size: int,
        num_workers: int = 0,
        limits: dict[str, int | None] | None = None,
    ) -> None:
        """`limits` caps a split to its first N samples ({"train": 6000}): a CPU-sized subset."""
        super().__init__()
        self.task_dir = Path(task_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.limits = {k: v for k, v in (limits or {}).items() if v is not None}
        self.meta = load_meta(self.task_dir)
        unknown = set(self.limits) - set(SPLITS)
        if unknown or any(not isinstance(v, int) or v < 1 for v in self.limits.values()):
            raise ConvrecError(
                f"split limits {self.limits} are invalid: use train/val/test with integers >= 1 "
                f"(task.train_limit, task.test_limit) or null for the whole split"
            )
        self.datasets: dict[str, BatchIndexedDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for split in SPLITS:
            tensors = load_split(self.task_dir, split, verify_against=self.meta)
            limit = self.limits.get(split)
            if limit is not None:
                tensors = {k: v[:limit] for k, v in tensors.items()}
            x = self._normalise(tensors["x"], tensors.get("lengths"))
            lengths = [tensors["lengths"]] if "lengths" in tensors else []
            parts = [x, *lengths, tensors["y"]]
            self.datasets[split] = BatchIndexedDataset(*parts)

    def _normalise(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if x.dtype == torch.int64:  # token ids
            return x
        x = x.float()
        stats = self.meta["normalize"]
        if stats is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)  # broadcast over channels
            mean, std = torch.tensor(stats["mean"]), torch.tensor(stats["std"])
            x = (x - mean.view(shape)) / std.clamp(min=1e-8).view(shape)
        if lengths is not None:  # padding stays zero, as the models' own padding is
            x = x * (torch.arange(x.shape[-1])[None, :] < lengths[:, None]).unsqueeze(1)
        return x

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
