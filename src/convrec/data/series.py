"""Labelled series (UCR/UEA `.ts` files, a user's table of series) as RawSplits: the one way
the built-in UCR tasks and the generic `timeseries` source turn series and label strings into
tensors, so the same files give the same prepared data whichever path reads them.

Labels map to 0..K-1 in sorted order of their strings. Series of several lengths are
right-padded with zeros to the longest one of either split and carry their true lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from convrec.data.contract import RawSplits, Split
from convrec.data.labels import encode_labels, majority_baseline
from convrec.errors import ConvrecError

Series = tuple[list[np.ndarray], list[str]]  # [N arrays (C, T_i)], N labels


def read_ts(path: Path) -> Series:
    """A UCR/UEA `.ts` file's series, each (C, T_i) float32, and their labels as strings; a file
    aeon cannot parse, or one without labels, is one line."""
    from aeon.datasets import load_from_ts_file  # imported here: importing aeon takes seconds

    try:
        x, y = load_from_ts_file(str(path))
    except Exception as err:  # aeon's parser raises several kinds, each with a message
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConvrecError(f"{path} is not a readable .ts file ({reason})") from None
    if y is None:
        raise ConvrecError(f"{path} has no class labels (@classLabel false); each series needs one")
    # a 3-D array (one length) or a list of (C, T_i) arrays
    return [np.asarray(s, dtype=np.float32) for s in x], [str(label) for label in y]


def pad(series: Sequence[np.ndarray], length: int) -> torch.Tensor:
    """(N, C, length) float32, each series right-padded with zeros."""
    out = np.zeros((len(series), series[0].shape[0], length), dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, : s.shape[1]] = s
    return torch.from_numpy(out)


def labelled_series(train: Series, test: Series, where: str,
                    sources: dict[str, str]) -> RawSplits:  # fmt: skip
    """RawSplits of float sequences and class targets, with the majority-class baseline.
    `where` names the data in errors (a dataset, a file)."""
    (train_series, train_labels), (test_series, test_labels) = train, test
    class_names, train_y, test_y = encode_labels(train_labels, test_labels, where)
    channels = {s.shape[0] for s in (*train_series, *test_series)}
    if len(channels) > 1:
        raise ConvrecError(f"{where}: series have different numbers of channels "
                           f"({sorted(channels)}); every series needs the same")  # fmt: skip
    lengths = {split: [s.shape[1] for s in series]
               for split, series in (("train", train_series), ("test", test_series))}  # fmt: skip
    longest = max(max(lengths["train"]), max(lengths["test"]))
    variable = min(min(lengths["train"]), min(lengths["test"])) < longest

    def step_counts(split: str) -> torch.Tensor | None:
        return torch.tensor(lengths[split], dtype=torch.int64) if variable else None

    return RawSplits(
        train=Split(pad(train_series, longest), train_y, lengths=step_counts("train")),
        test=Split(pad(test_series, longest), test_y, lengths=step_counts("test")),
        input_kind="sequence",
        class_names=class_names,
        baseline=majority_baseline(train_y, test_y, class_names),
        sources=sources,
    )
