"""Serve a prepared task to Lightning: normalised tensors, plain DataLoaders.

A batch is `[x, y]`, `[x, lengths, y]` for variable-length tasks (x is
right-padded with zeros, also after normalisation, so padding reads as zeros), or
`[x, question, y]` for image QA. The model is called as `net(x, *rest)`.

Token batches are cut to their longest sequence, and training batches of tokens are drawn
from length buckets: text is stored padded to the task's longest review, and on a CPU the
padded steps were most of the cost (an SST-2 batch of short phrases padded to 56 tokens).
Every text model reads `lengths` and is width-agnostic. Float sequences keep the task's
fixed width: a 2-D CNN over a spectrogram has a dense head sized for it.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    Sampler,
    SequentialSampler,
    TensorDataset,
)

from convrec.data.contract import SPLITS, load_meta, load_split
from convrec.errors import ConvrecError


class BatchIndexedDataset(TensorDataset):
    """A TensorDataset that serves a whole batch with one indexing operation.

    DataLoader calls `__getitems__` with a batch's indices when it exists; one
    fancy-index per tensor is many times faster than stacking single samples.
    """

    def __init__(self, *tensors: torch.Tensor, trim: bool = False) -> None:
        """`trim`: tensors are `(x, lengths, y)`; cut each batch's x, and y when it holds a tag
        per token, to its longest sequence."""
        super().__init__(*tensors)
        self.trim = trim
        self.trim_target = trim and tensors[-1].shape[1:] == tensors[0].shape[1:]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, device=self.tensors[0].device)
        batch = [tensor[index] for tensor in self.tensors]
        if self.trim:
            longest = int(batch[1].max())
            batch[0] = batch[0][..., :longest]
            if self.trim_target:
                batch[-1] = batch[-1][..., :longest]
        return batch


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar lengths, in a fresh random order every epoch.

    Shuffle, sort each run of `pool` batches' worth of samples by length, cut it into
    batches and shuffle the batches (torchtext's BucketIterator): a batch pads to a length
    near its own samples', while every epoch still sees new batch compositions.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, pool: int = 50, seed: int = 0):
        self.lengths, self.batch_size, self.pool = lengths, batch_size, pool
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls it before each epoch: the order is a function of (seed, epoch), so a
        run resumed at epoch k draws the batches the uninterrupted run drew there."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator)
        batches = []
        for chunk in order.split(self.batch_size * self.pool):
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(chunk.split(self.batch_size))
        for i in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[i].tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def keep_batch(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    """The batch is already collated by `__getitems__`."""
    return batch


# Batches handed to Lightning at a time, in training and evaluation alike. Lightning's loop
# costs ~1 ms a call on a CPU (its hooks, each callback's, its fetcher, the progress bar): a
# sixth of a small MLP's training step, and half of its validation batch (a validation pass
# through Lightning took 70-110 ms against 41-45 ms for the same 40 batches in a plain loop),
# paid once per chunk of batches instead of once per batch. The module steps through the chunk.
BATCHES_PER_CALL = 16


class BatchChunks:
    """A split's loader as Lightning sees it: lists of up to `size` consecutive batches of
    `loader`, the first `batches` batches of each epoch.

    Not a DataLoader, so Lightning leaves its sampler alone (under DDP too: the loader's
    DistributedSampler already shards). `sampler` is what Lightning sets the epoch on, which
    draws a training epoch's order: the DistributedSampler, or the length buckets (Lightning
    looks for `set_epoch` on a loader's sampler, never on its batch sampler)."""

    batch_sampler = None  # Lightning reads the order from `sampler` (it warns of shuffled eval)

    def __init__(self, loader: DataLoader, sampler: Sampler, size: int, batches: int) -> None:
        self.loader, self.sampler, self.size, self.batches = loader, sampler, size, batches

    def __len__(self) -> int:
        return -(-self.batches // self.size)

    def __iter__(self):
        batches = islice(self.loader, self.batches)
        while chunk := list(islice(batches, self.size)):
            yield chunk


def batch_count(batches: int, limit: int | float | None, split: str = "train") -> int:
    """How many of an epoch's `batches` a trainer's `limit_<split>_batches` lets run, counted as
    Lightning counts them (a count, or a fraction of the epoch). An evaluation limit may leave
    none (0 turns validation off, as in Lightning); a training limit may not."""
    if limit is None:
        return batches
    if isinstance(limit, float) and limit <= 1.0:
        count = int(batches * limit)
    else:
        count = min(batches, int(limit))
    if count < 1 and split == "train":
        raise ConvrecError(
            f"trainer.limit_train_batches={limit} leaves no training batch of the epoch's "
            f"{batches}; raise it, or set it to null for the whole epoch"
        )
    if count < 0:  # Lightning refused these when it applied the evaluation limits itself
        raise ConvrecError(
            f"trainer.limit_{split}_batches={limit} is negative; use a count of batches, a "
            f"fraction of the epoch, 0 for none, or null for the whole epoch"
        )
    return count


class PreparedDataModule(L.LightningDataModule):
    def __init__(
        self,
        task_dir: Path,
        batch_size: int,
        num_workers: int = 0,
        limits: dict[str, int | None] | None = None,
        seed: int = 0,
        batches: dict[str, int | float | None] | None = None,
    ) -> None:
        """`batch_size` is the global batch: under DDP each of the world_size processes takes
        an equal share of it, so changing the device count changes neither the optimisation
        nor the learning rate it needs. `limits` caps a split to its first N samples
        ({"train": 6000}): a CPU-sized subset. `seed` sets the training order.
        `batches`: the trainer's `limit_<split>_batches` by split, which the loaders apply
        themselves (Lightning's would count chunks of batches, not batches)."""
        super().__init__()
        self.task_dir = Path(task_dir)
        self.batch_size = batch_size
        self.seed = seed
        self.batches = dict(batches or {})
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
        if not self.datasets:
            trainer = self.trainer
            self.load(trainer.strategy.root_device if trainer else torch.device("cpu"))

    def load(self, device: torch.device | str = "cpu") -> None:
        """Read every split into memory on `device`. On a GPU the whole set stays there and
        each batch is cut from it in place: no host-to-device copy per step. Loaded already
        (training reads and verifies the data before it opens a run), it moves there."""
        device = torch.device(device)
        if self.datasets:
            for split, data in self.datasets.items():
                if data.tensors[0].device != device:
                    moved = (t.to(device) for t in data.tensors)
                    self.datasets[split] = BatchIndexedDataset(*moved, trim=data.trim)
            return
        for split in SPLITS:
            data = load_split(self.task_dir, split, verify_against=self.meta)
            limit = self.limits.get(split)
            if limit is not None:
                data = data.take(slice(0, limit))
            x = self._normalise(data.x, data.lengths)
            extra = [t for t in (data.lengths, data.question) if t is not None]
            parts = [t.to(device) for t in (x, *extra, data.y)]
            self.datasets[split] = BatchIndexedDataset(*parts, trim=self.is_text(x, data.lengths))

    @staticmethod
    def is_text(x: torch.Tensor, lengths: torch.Tensor | None) -> bool:
        return x.dtype == torch.int64 and lengths is not None

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

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # Batches are cut from tensors already on the run's device (load); Lightning's walk
        # over the batch to move it cost a fraction of a millisecond every step.
        if all(t.device == device for b in batch for t in b):  # a chunk of batches
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def per_device_batch(self, world_size: int) -> int:
        if self.batch_size % world_size:
            raise ConvrecError(
                f"task.batch_size={self.batch_size} (the global batch) does not split evenly "
                f"over {world_size} processes; set it to a multiple of {world_size}"
            )
        return self.batch_size // world_size

    def _loader(self, split: str, shuffle: bool) -> BatchChunks:
        dataset = self.datasets[split]
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        batch = self.per_device_batch(world)
        if shuffle and dataset.trim and world == 1:
            # Seeded from torch's global RNG, which Lightning's seed_everything has set.
            seed = int(torch.randint(2**31, (1,)))
            lengths = dataset.tensors[1].cpu()  # the sampler orders indices on the host
            sampler = LengthBucketSampler(lengths, batch, seed=seed)
            batching = {"batch_sampler": sampler}
        elif shuffle or world > 1:
            # One permutation per epoch (seed + epoch; Lightning calls set_epoch) however
            # many processes share it: process r takes every world-th sample, so global batch
            # k holds the very samples a single process's batch k would, and a DDP run takes
            # the same steps as one process. (Length buckets do not shard: text under DDP is
            # shuffled plainly.) Evaluation under DDP is sharded in order, as Lightning's own
            # sampler shards a loader it is given (the last samples repeated to even shares).
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank,
                                         shuffle=shuffle, seed=self.seed)  # fmt: skip
            batching = {"batch_size": batch, "sampler": sampler}
        else:
            sampler = SequentialSampler(dataset)
            batching = {"batch_size": batch, "sampler": sampler}
        loader = DataLoader(
            dataset,
            **batching,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
        batches = batch_count(len(loader), self.batches.get(split), split)
        return BatchChunks(loader, sampler, BATCHES_PER_CALL, batches)

    def train_dataloader(self) -> BatchChunks:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> BatchChunks:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> BatchChunks:
        return self._loader("test", shuffle=False)
