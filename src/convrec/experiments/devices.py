"""The device an experiment runs on (`device:` in conf/bench.yaml), and its name as reports
print it."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    """`auto`: the GPU when there is one, else the CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"
