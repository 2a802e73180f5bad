"""What a trained model costs beyond its parameter count: inference latency on one test
example and the tensor memory of a training step, both measured on the run's device.

Training-step memory is counted from the tensors themselves, so it means the same on a CPU
(whose allocator keeps no statistics) as on a GPU: weights, their gradients, the optimizer's
state, and every activation autograd keeps for backward during one training batch (saved-tensor
hooks see each one; shared storage counts once, weights not twice). Activations dominate for
recurrent models on long sequences, which keep every step's state until backward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median, quantiles

import lightning as L
import torch
from torch import nn

MIB = 2**20


def flush_denormals() -> None:
    """Compute floats below float32's normal range (1e-38) as zero on a CPU, for every model of
    every run alike. The scan family's products of decays, and their gradients, drift into that
    range, where an x86 core takes tens of times longer per operation: a 50176 x 128 by
    128 x 64 matrix product of such values took 881 ms against 12, which made a minGRU step on
    sequential MNIST 1.2 s instead of 0.66 (and a GRU's 2.0 s instead of 0.78). A value that
    small changes no result.

    Call it before the process's first tensor operation: the mode is a register of the calling
    thread, and the threads of PyTorch's CPU pool copy it when they start, at the first
    operation that runs in parallel; a pool started before keeps computing subnormals (a
    minLSTM step on sequential MNIST: 1.15-1.47 s against 0.62-0.68 with every thread
    flushing)."""
    torch.set_flush_denormal(True)


class TrainingMemory(L.Callback):
    """Counts a training step's tensor memory: activations saved for backward during the first
    training batch, then, when training ends, weights, gradients and optimizer state."""

    first_step_only = True  # its step hook acts on the fit's first step (lit.base.direct_steps)

    def __init__(self) -> None:
        self.saved_bytes: int | None = None
        self.megabytes: float | None = None  # None until training ends
        self.cuda_peak_megabytes: float | None = None  # the allocator's own peak, on a GPU
        self._hooks = None
        self._storages: dict[int, int] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.saved_bytes is not None or self._hooks is not None:
            return
        weights = {p.untyped_storage().data_ptr() for p in pl_module.parameters()}
        storages = self._storages

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in weights:
                storages[storage.data_ptr()] = storage.nbytes()
            return tensor  # kept as autograd would keep it: nothing copied

        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        self._hooks.__enter__()

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if self._hooks is None:
            return
        self._hooks.__exit__(None, None, None)
        self._hooks = None
        self.saved_bytes = sum(self._storages.values())
        self._storages = {}

    def on_train_end(self, trainer, pl_module) -> None:
        if self.saved_bytes is None:  # no training batch ran
            return
        self.megabytes = training_memory_mb(pl_module, trainer.optimizers, self.saved_bytes)
        device = trainer.strategy.root_device
        if device.type == "cuda":
            self.cuda_peak_megabytes = torch.cuda.max_memory_allocated(device) / MIB


def training_memory_mb(
    model: nn.Module, optimizers: Sequence[torch.optim.Optimizer], saved_bytes: int
) -> float:
    """Weights + gradients + optimizer state + saved activations, in MiB."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    state = sum(
        value.numel() * value.element_size()
        for optimizer in optimizers
        for entry in optimizer.state.values()
        for value in entry.values()
        if torch.is_tensor(value)
    )
    return (weights + gradients + state + saved_bytes) / MIB


def timed_calls(
    call: Callable[[], object], device: torch.device, warmup_calls: int,
    warmup_seconds: float = 0.0, min_calls: int = 1, min_seconds: float = 0.0,
    max_calls: int | None = None,
) -> list[float]:  # fmt: skip
    """Seconds of each timed `call()`: first untimed ones, `warmup_calls` of them and for
    `warmup_seconds` at least, then timed ones until there are `min_calls` and they took
    `min_seconds` (at most `max_calls`, by default `min_calls`). On a GPU each call is timed to
    the end of its kernels, which run asynchronously."""
    started, warmed = time.perf_counter(), 0
    while warmed < warmup_calls or time.perf_counter() - started < warmup_seconds:
        _sync(device)
        call()
        warmed += 1
    _sync(device)
    timings: list[float] = []
    limit = max_calls if max_calls is not None else min_calls
    while len(timings) < limit and (len(timings) < min_calls or sum(timings) < min_seconds):
        _sync(device)
        call_started = time.perf_counter()
        call()
        _sync(device)
        timings.append(time.perf_counter() - call_started)
    return timings


def median_seconds(call: Callable[[], object], device: torch.device, repeats: int,
                   warmup: int) -> float:  # fmt: skip
    """Median wall time of `call()` over `repeats` timed calls after `warmup` untimed ones."""
    return median(timed_calls(call, device, warmup, min_calls=repeats))


@dataclass(frozen=True)
class Latency:
    median_ms: float
    iqr_ms: float  # the interquartile range of the timed calls: how far to trust the median
    calls: int


@torch.inference_mode()
def latency(
    predict: Callable[[], object], device: torch.device, warmup_seconds: float = 0.1,
    min_calls: int = 20, min_seconds: float = 0.25, max_calls: int = 10_000,
) -> Latency:  # fmt: skip
    """Wall time of `predict()`: warm up for `warmup_seconds` (at least 3 calls), then time
    calls until there are `min_calls` of them and they took `min_seconds` (at most
    `max_calls`); the median and the interquartile range, in ms.

    Why so many: the first calls of a freshly trained model pay one-off costs (oneDNN picks
    kernels for the shape, the thread pool wakes, caches are cold). With three warm-up calls and
    twenty timed ones, five identical MNIST-1D runs measured 32, 28, 14, 0.10 and 0.10 ms."""
    timings = timed_calls(predict, device, 3, warmup_seconds, min_calls, min_seconds, max_calls)
    q25, q50, q75 = quantiles(timings, n=4, method="inclusive")
    return Latency(1000.0 * q50, 1000.0 * (q75 - q25), len(timings))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
