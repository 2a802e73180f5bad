"""UCR/UEA time-series classification, read from the archive files inside the aeon wheel.

aeon 1.6.0 ships the official `<Name>_TRAIN.ts` / `<Name>_TEST.ts` files of a few
datasets (univariate UCR: GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf; multivariate
UEA: JapaneseVowels, BasicMotions), so these tasks need no download. Each file is checked
against the sha256 pinned here (the wheel's RECORD) before aeon's `.ts` reader parses it.

Series become tensors as any labelled series do (convrec.data.series): labels map to 0..K-1 in
sorted order of their strings; JapaneseVowels (7 to 29 steps) is right-padded with zeros to
the longest series of either split, with its true lengths.
No per-series normalisation is added: the UCR univariate files are already z-normalised
per series (each series has mean 0, std 1), and prepare standardises every channel with
train statistics over the real steps, which is what the multivariate sets need (their
sensor and cepstrum channels come in very different scales).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from convrec.data.checksums import verify
from convrec.data.contract import RawSplits
from convrec.data.series import labelled_series, read_ts
from convrec.data.tasks import TASKS
from convrec.errors import ConvrecError

AEON_VERSION = "1.6.0"  # the wheel whose files (and checksums below) these tasks read
SPLITS = ("TRAIN", "TEST")

# task name -> (aeon dataset folder, {split: sha256 of <Name>_<split>.ts}), from aeon's RECORD
DATASETS: dict[str, tuple[str, dict[str, str]]] = {
    "gunpoint": ("GunPoint", {
        "TRAIN": "f842401779fd9800d247d8b33121a1a4643710a19b24917dbdd9a060ca8630d5",
        "TEST": "79332750788a6227b325b96bd0d70130c8eb707b9731f8d7dec62b7a7d36017e",
    }),
    "italy_power_demand": ("ItalyPowerDemand", {
        "TRAIN": "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
        "TEST": "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    }),
    "arrowhead": ("ArrowHead", {
        "TRAIN": "a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
        "TEST": "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904",
    }),
    "osuleaf": ("OSULeaf", {
        "TRAIN": "86b9d6e860414ffd26cebc62fff84ffb37fa588ef3e5bf79e4094a437c36ddfc",
        "TEST": "6c549dd354f9e42d5985fa5fab75321ca9acefc7873457e71467fc8a31f107ce",
    }),
    # The variable-length files, not the `_eq_` ones that aeon resampled to one length.
    "japanese_vowels": ("JapaneseVowels", {
        "TRAIN": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
        "TEST": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    }),
    "basic_motions": ("BasicMotions", {
        "TRAIN": "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
        "TEST": "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
    }),
}  # fmt: skip

REINSTALL = f"Reinstall the pinned aeon (aeon=={AEON_VERSION}) with `uv sync`."


def aeon_data_dir() -> Path:
    """aeon's bundled dataset folder, found without importing aeon (which takes seconds)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise ConvrecError(
            f"the UCR/UEA tasks read their files from aeon, which is not installed. {REINSTALL}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def read_split(dataset: str, split: str, sha256: str) -> tuple[list[np.ndarray], list[str]]:
    """One verified `.ts` file as ([N arrays (C, T_i)], labels as strings)."""
    path = aeon_data_dir() / dataset / f"{dataset}_{split}.ts"
    if not path.is_file():
        raise ConvrecError(
            f"{path} is missing; the {dataset} task reads the copy shipped in the aeon "
            f"{AEON_VERSION} wheel. {REINSTALL}"
        )
    verify(path, sha256, REINSTALL)
    series, labels = read_ts(path)
    if any(np.isnan(s).any() for s in series):
        raise ConvrecError(f"{path} has missing values, which these tasks do not support")
    return series, labels


def load_dataset(task: str) -> RawSplits:
    dataset, checksums = DATASETS[task]
    read = {split: read_split(dataset, split, checksums[split]) for split in SPLITS}
    sources = {f"aeon-{AEON_VERSION}/{dataset}/{dataset}_{split}.ts": checksums[split]
               for split in SPLITS}  # fmt: skip
    return labelled_series(read["TRAIN"], read["TEST"], dataset, sources)


def _register(task: str) -> None:
    @TASKS.register(task)
    def loader(cfg: DictConfig, raw_dir: Path) -> RawSplits:
        return load_dataset(task)  # nothing is downloaded, so raw_dir stays untouched


for _task in DATASETS:
    _register(_task)
