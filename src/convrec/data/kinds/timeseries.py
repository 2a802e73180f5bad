"""The `timeseries` source kind: a user's labelled series, from UCR/UEA `.ts` files or a table.

    # conf/task/my_signals.yaml
    defaults: [/source/timeseries@_here_, _self_]
    name: my_signals
    source:
      train: data/user/MySignals_TRAIN.ts  # relative to the project root, or absolute
      test: data/user/MySignals_TEST.ts    # optional: else a seeded, stratified test_fraction

A `.ts` file may hold univariate or multivariate series of any lengths (padded, with their
lengths, as the built-in JapaneseVowels). A table (`.csv`, `.tsv`, `.parquet`) holds either
one univariate series per row (wide: its label in `label_column`, its steps in every other
column, left to right) or, with `id_column` set, one value per row (long: `id_column` names
the series, `time_column` orders its steps, `value_column` holds the value, `label_column` the
series' label on each of its rows, and an optional `channel_column` the channel of a
multivariate series; series may differ in length, each of their channels may not).
The series become tensors exactly as the built-in UCR tasks' do (convrec.data.series), so
the same files give the same prepared data either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from convrec.data.contract import RawSplits
from convrec.data.kinds import KINDS, checksums, labels_of, read_splits, read_table, table_line
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
    elif source.get("id_column"):
        series, labels = _read_long_table(path, source)
    else:
        series, labels = _read_table(path, str(source.label_column))
    if not series:
        raise ConvrecError(f"{path} holds no series")
    for i, s in enumerate(series):
        if not np.isfinite(s).all():
            raise ConvrecError(f"{path}: series {i + 1} has a missing or non-finite value; "
                               "fill or drop it")  # fmt: skip
    return series, labels


def _cell(value) -> str:
    """A cell as the file has it: 'x', 'inf', 'nan' (an empty cell reads as nan)."""
    return repr(value if isinstance(value, str) else str(value))


def _read_table(path: Path, label_column: str) -> Series:
    table = read_table(path, {"label_column": label_column})
    steps = table.drop(columns=[label_column])
    if steps.shape[1] == 0:
        raise ConvrecError(f"{path} has no columns of steps besides {label_column!r}")
    values = steps.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, column = np.argwhere(bad.to_numpy())[0]
        raise ConvrecError(f"{path}, {table_line(path, row)}, column {steps.columns[column]!r}: "
                           f"{_cell(steps.iat[row, column])} is not a finite number; every step "
                           "needs one")  # fmt: skip
    array = values.to_numpy(dtype=np.float32)
    return [row[None, :] for row in array], labels_of(table[label_column], path)


def _read_long_table(path: Path, source: DictConfig) -> Series:
    """Series from one value per row, in the order their ids first appear in the file; each
    (C, T_i) with channels in sorted order of their names and steps in time order."""
    columns = {key: str(source[key]) for key in ("id_column", "time_column", "value_column",
                                                  "label_column", "channel_column")
               if source.get(key)}  # fmt: skip
    for key in ("time_column", "value_column"):
        if key not in columns:
            raise ConvrecError(f"{path}: a long table (source.id_column set) needs "
                               f"source.{key} too")  # fmt: skip
    table = read_table(path, columns)
    ident, time, value, label = (columns[k] for k in ("id_column", "time_column",
                                                       "value_column", "label_column"))
    channel = columns.get("channel_column")

    values = pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ConvrecError(f"{path}, {table_line(path, row)}, column {value!r}: "
                           f"{_cell(table[value].iat[row])} is not a finite number; every step "
                           "needs one")  # fmt: skip
    keys = [ident, *([channel] if channel else []), time]
    repeated = table.duplicated(subset=keys)
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        where = {k: table[k].astype(str).iat[row] for k in keys}
        raise ConvrecError(f"{path}, {table_line(path, row)}: a second value for series "
                           f"{where[ident]!r} at {time} {where[time]!r}"
                           + (f", channel {where[channel]!r}" if channel else "")
                           + "; each step needs one row")  # fmt: skip
    labels_of(table[label], path)  # a missing label is refused with its line
    channels = sorted(table[channel].astype(str).unique()) if channel else [None]
    numeric = pd.to_numeric(table[time], errors="coerce")  # "10" after "9", as numbers
    frame = table.assign(_value=values, _time=numeric if numeric.notna().all() else table[time],
                         _channel=table[channel].astype(str) if channel else None)
    series, labels = [], []
    for name, rows in frame.groupby(ident, sort=False):
        names = rows[label].astype(str).unique()
        if len(names) > 1:
            raise ConvrecError(f"{path}: series {str(name)!r} has rows labelled "
                               f"{', '.join(map(repr, names[:3]))}; a series has one label")
        steps = []
        for c in channels:
            part = rows if c is None else rows[rows["_channel"] == c]
            steps.append(part.sort_values("_time", kind="stable")["_value"].to_numpy())
        if len({len(v) for v in steps}) > 1:
            counts = ", ".join(f"{c} {len(v)}" for c, v in zip(channels, steps, strict=True))
            raise ConvrecError(f"{path}: series {str(name)!r} has channels of different lengths "
                               f"({counts} steps); every channel of a series needs a value at "
                               "each of its times")  # fmt: skip
        series.append(np.stack(steps).astype(np.float32))
        labels.append(str(names[0]))
    return series, labels
