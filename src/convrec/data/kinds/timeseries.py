"""The `timeseries` source kind: a user's labelled series, from UCR/UEA `.ts` files or a table.

    # conf/task/my_signals.yaml
    defaults: [/source/timeseries@_here_, _self_]
    name: my_signals
    source:
      train: data/user/MySignals_TRAIN.ts  # relative to the project root, or absolute
      test: data/user/MySignals_TEST.ts    # optional: else a seeded, stratified test_fraction

A `.ts` file may hold univariate or multivariate series of any lengths (padded, with their
lengths, as the built-in JapaneseVowels). A table (`.csv`, `.tsv`, `.parquet`) holds one
univariate series per row: its label in `label_column`, its steps in every other column, left
to right. The series become tensors exactly as the built-in UCR tasks' do
(convrec.data.series), so the same files give the same prepared data either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from convrec.data.contract import RawSplits
from convrec.data.kinds import KINDS, checksums, labels_of, read_splits, read_table
from convrec.data.series import Series, labelled_series, read_ts
from convrec.errors import ConvrecError

SUFFIXES = (".ts", ".csv", ".tsv", ".parquet")


@KINDS.register("timeseries")
def timeseries(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train, test, paths = read_splits(cfg, SUFFIXES, lambda path: read_series(path, cfg.source))
    return labelled_series(train, test, str(paths[cfg.source.train]), checksums(paths))


def read_series(path: Path, source: DictConfig) -> Series:
    """The series of one file and their labels (as strings), or one line naming what is wrong
    in it and where."""
    if path.suffix.lower() == ".ts":
        series, labels = read_ts(path)
    else:
        series, labels = _read_table(path, str(source.label_column))
    if not series:
        raise ConvrecError(f"{path} holds no series")
    for i, s in enumerate(series):
        if not np.isfinite(s).all():
            raise ConvrecError(f"{path}: series {i + 1} has a missing or non-finite value; "
                               "fill or drop it")  # fmt: skip
    return series, labels


def _read_table(path: Path, label_column: str) -> Series:
    table = read_table(path, {"label_column": label_column})
    steps = table.drop(columns=[label_column])
    if steps.shape[1] == 0:
        raise ConvrecError(f"{path} has no columns of steps besides {label_column!r}")
    values = steps.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, column = np.argwhere(bad.to_numpy())[0]
        line = f"line {row + 2}" if path.suffix.lower() != ".parquet" else f"row {row + 1}"
        raise ConvrecError(f"{path}, {line}, column {steps.columns[column]!r}: "
                           f"{steps.iat[row, column]!r} is not a number; every step needs one")
    array = values.to_numpy(dtype=np.float32)
    return [row[None, :] for row in array], labels_of(table[label_column], path)
