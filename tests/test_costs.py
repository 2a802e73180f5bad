"""Measured costs: the training step's tensor memory, counted through a real Trainer, and
inference latency."""

from __future__ import annotations

import time

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from convrec.costs import MIB, TrainingMemory, flush_denormals, latency

N, IN, HIDDEN = 8, 10, 20


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.net(x).sum()  # sum() keeps nothing for backward

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


def test_training_memory_counts_weights_gradients_adam_state_and_saved_activations(tmp_path):
    memory = TrainingMemory()
    trainer = L.Trainer(max_steps=2, accelerator="cpu", callbacks=[memory], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path)  # fmt: skip
    data = DataLoader(TensorDataset(torch.randn(2 * N, IN)), batch_size=N)
    trainer.fit(Tiny(), data)
    # Saved for backward: the input batch (for the first weight's gradient) and the ReLU's
    # output, which the second layer also saves (one storage, counted once); weights never.
    assert memory.saved_bytes == 4 * N * (IN + HIDDEN)
    weights = 4 * (IN * HIDDEN + HIDDEN + HIDDEN + 1)
    adam = 2 * weights + 4 * 4  # two moments per weight, a step counter per tensor
    assert memory.megabytes == pytest.approx((weights + weights + adam + memory.saved_bytes) / MIB)


def test_latency_warms_up_then_times_enough_calls_for_a_median_and_its_spread():
    calls = []
    timed = latency(lambda: calls.append(1), torch.device("cpu"), warmup_seconds=0.0,
                    min_calls=5, min_seconds=0.0)  # fmt: skip
    assert len(calls) == 3 + 5 and timed.calls == 5  # three warm-up calls at least, then five
    assert 0 < timed.median_ms < 1 and 0 <= timed.iqr_ms < 1

    def sleepy():
        time.sleep(0.002)

    timed = latency(sleepy, torch.device("cpu"), warmup_seconds=0.01, min_calls=5,
                    min_seconds=0.05)  # fmt: skip
    assert 5 < timed.calls <= 26 and timed.median_ms >= 2.0  # the time floor, not 5 calls


def test_floats_below_float32s_normal_range_are_computed_as_zero():
    """What training and the benches set: a product below 1.2e-38 is 0, not a subnormal that
    an x86 core computes tens of times slower."""
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("a CPU without the flush-to-zero mode")
    flush_denormals()
    tiny = torch.full((4,), 1e-20) * torch.full((4,), 1e-20)
    assert tiny.eq(0).all()
