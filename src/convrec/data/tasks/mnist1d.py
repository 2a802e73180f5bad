"""MNIST-1D (Greydanus 2020): 10 classes of 40-step 1-D signals, generated with a fixed seed.

`make_dataset` is called directly: the package's `get_dataset` tries a
download first.
"""

from __future__ import annotations

from pathlib import Path

import torch
from mnist1d.data import get_dataset_args, make_dataset
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.tasks import TASKS


@TASKS.register("mnist1d")
def mnist1d(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    args = get_dataset_args()
    args.seed = int(cfg.generator_seed)  # the published dataset uses 42
    data = make_dataset(args)

    def signals(key: str) -> torch.Tensor:
        return torch.as_tensor(data[key], dtype=torch.float32).unsqueeze(1)  # (N, 1, 40)

    settings = {k: v for k, v in vars(args).items() if k != "url"}
    return RawSplits(
        train=Split(signals("x"), torch.as_tensor(data["y"], dtype=torch.int64)),
        test=Split(signals("x_test"), torch.as_tensor(data["y_test"], dtype=torch.int64)),
        input_kind="sequence",
        class_names=[str(d) for d in range(10)],
        generator={"package": "mnist1d", **settings},
    )
