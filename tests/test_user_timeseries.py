"""A user's own series (source kind `timeseries`): one YAML file in conf/task/, no Python. The
YAML is composed for real (a copy of conf/ with the user's file added), prepared and trained
through the code the stages run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convrec.compose import compose_config
from convrec.data.contract import load_meta, load_split
from convrec.data.prepare import prepare_task
from convrec.data.tasks.ucr import aeon_data_dir
from convrec.errors import ConvrecError
from convrec.training import train


def _csv(path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def _series_rows(n: int, steps: int, seed: int = 0) -> list[str]:
    """n labelled rows: class a rises, class b falls (a model can tell them apart)."""
    rng = np.random.default_rng(seed)
    rows = ["label," + ",".join(f"t{i}" for i in range(steps))]
    for i in range(n):
        label = "ab"[i % 2]
        trend = np.linspace(-1, 1, steps) * (1 if label == "a" else -1)
        values = trend + 0.1 * rng.standard_normal(steps)
        rows.append(label + "," + ",".join(f"{v:.4f}" for v in values))
    return rows


def test_a_ucr_set_read_from_its_own_ts_files_prepares_exactly_as_the_built_in_task(
    user_conf, tmp_path
):
    folder = aeon_data_dir() / "GunPoint"
    task = user_conf("my_gunpoint", f"""\
        defaults: [/source/timeseries@_here_, _self_]
        name: my_gunpoint
        source:
          train: {folder / "GunPoint_TRAIN.ts"}
          test: {folder / "GunPoint_TEST.ts"}
        val_size: 0
        select: last
        """)  # fmt: skip
    built_in = compose_config(tmp_path / "conf", "prepare", ["task=gunpoint"]).task
    mine = load_meta(prepare_task(task, tmp_path / "prepared", tmp_path / "raw"))
    theirs = load_meta(prepare_task(built_in, tmp_path / "prepared", tmp_path / "raw"))
    for key in ("input_kind", "input_shape", "class_names", "split_sizes", "normalize",
                "baseline", "variable_length"):  # fmt: skip
        assert mine[key] == theirs[key], key
    # byte-identical tensors: the same files through the generic path and the built-in loader
    assert {k: v for k, v in mine["files"].items()} == theirs["files"]
    assert list(mine["sources"].values()) == list(theirs["sources"].values())


def test_a_csv_of_series_prepares_with_a_stratified_test_split_and_trains(user_conf, tmp_path):
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data" / "signals.csv", _series_rows(80, 24))
    task = user_conf("my_signals", """\
        defaults: [/source/timeseries@_here_, _self_]
        name: my_signals
        source:
          train: data/signals.csv
        batch_size: 8
        """)  # fmt: skip
    prepared = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    meta = load_meta(prepared)
    assert meta["input_kind"] == "sequence" and meta["input_shape"] == [1, 24]
    assert meta["class_names"] == ["a", "b"]
    assert meta["split_sizes"] == {"train": 58, "val": 6, "test": 16}  # 0.2 of each class; 0.1
    test = load_split(prepared, "test")
    assert torch.bincount(test.y).tolist() == [8, 8]  # stratified: 8 of each class's 40
    assert torch.bincount(load_split(prepared, "val").y).tolist() == [3, 3]  # stratified too
    assert list(meta["sources"]) == ["data/signals.csv"]

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(tmp_path / "conf", "train", [
        "task=my_signals", "model=fcn", "profile=tiny", f"paths.prepared={tmp_path / 'prepared'}",
        f"tracking.uri={uri}",
    ])  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "results/my_signals/fcn/metrics.json").read_text())
    assert metrics["test_samples"] == 16 and 0 <= metrics["value"] <= 100


def _long_rows(wide: list[str], channels: int = 1) -> list[str]:
    """The wide rows as a long table, one value per row: id, time, value, label (and channel:
    channel k holds the series times k + 1); each series' rows in shuffled order."""
    header, *rows = wide
    rng = np.random.default_rng(1)
    out = []
    for i, row in enumerate(rows):
        label, *values = row.split(",")
        lines = [f"s{i},{t},{float(v) * (k + 1):.4f},{label}" + (f",c{k}" if channels > 1 else "")
                 for t, v in enumerate(values) for k in range(channels)]  # fmt: skip
        out += [lines[j] for j in rng.permutation(len(lines))]
    return ["id,time,value,label" + (",channel" if channels > 1 else ""), *out]


LONG = """\
    defaults: [/source/timeseries@_here_, _self_]
    name: {name}
    source:
      train: data/{file}
      id_column: id
      time_column: time
      value_column: value
      {extra}
    """


def test_a_long_table_of_series_prepares_the_same_tensors_as_its_wide_form(user_conf, tmp_path):
    (tmp_path / "data").mkdir()
    wide = _series_rows(40, 12)
    _csv(tmp_path / "data" / "wide.csv", wide)
    _csv(tmp_path / "data" / "long.csv", _long_rows(wide))
    wide_task = user_conf("wide", """\
        defaults: [/source/timeseries@_here_, _self_]
        name: wide
        source: {train: data/wide.csv}
        """)  # fmt: skip
    long_task = user_conf("long", LONG.format(name="long", file="long.csv", extra=""))
    mine = prepare_task(long_task, tmp_path / "prepared", tmp_path / "raw")
    theirs = prepare_task(wide_task, tmp_path / "prepared", tmp_path / "raw")
    for split in ("train", "val", "test"):
        a, b = load_split(mine, split), load_split(theirs, split)
        torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
        assert torch.equal(a.y, b.y)


def test_a_long_table_with_a_channel_column_gives_multivariate_series(user_conf, tmp_path):
    (tmp_path / "data").mkdir()
    wide = _series_rows(20, 6)
    _csv(tmp_path / "data" / "long.csv", _long_rows(wide, channels=3))
    task = user_conf("multi", LONG.format(name="multi", file="long.csv",
                                          extra="channel_column: channel"))
    prepared = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert load_meta(prepared)["input_shape"] == [3, 6]
    x = torch.cat([load_split(prepared, s).x for s in ("train", "val", "test")])
    torch.testing.assert_close(x[:, 2], 3 * x[:, 0], rtol=1e-4, atol=1e-4)  # channel c2 = 3 x c0


LONG_BAD = [
    (["id,time,value,label", "s0,0,1,a", "s0,1,x,a", "s1,0,2,b"],
     r"line 3, column 'value': 'x' is not a finite number"),
    (["id,time,value,label", "s0,0,1,a", "s0,0,2,a", "s1,0,2,b"],
     r"line 3: a second value for series 's0' at time '0'"),
    (["id,time,value,label", "s0,0,1,a", "s0,1,2,b", "s1,0,2,b"],
     r"series 's0' has rows labelled 'a', 'b'"),
    (["id,when,value,label", "s0,0,1,a"], r"has no column 'time'.*source.time_column"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "message"), LONG_BAD)
def test_a_malformed_long_table_is_one_line_naming_where(user_conf, tmp_path, rows, message):
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data" / "bad.csv", rows)
    task = user_conf("badlong", LONG.format(name="badlong", file="bad.csv", extra=""))
    with pytest.raises(ConvrecError, match=message) as refused:
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "prepared").exists() or not any((tmp_path / "prepared").iterdir())


BAD_INPUTS = [
    ("missing.csv", None, r"source.train=data/missing.csv does not exist"),
    ("empty.csv", [], r"empty.csv is empty"),
    ("nolabel.csv", ["class,t0,t1", "a,1,2", "b,2,1"],
     r"has no column 'label'.*source.label_column"),
    ("text.csv", ["label,t0,t1", "a,1,2", "b,x,1"],
     r"line 3, column 't0': 'x' is not a finite number"),
    ("gap.csv", ["label,t0,t1", "a,1,2", "b,,1"], r"line 3, column 't0'.* is not a finite number"),
    ("ragged.csv", ["label,t0,t1", "a,1,2", "b,2,1,7"], r"cannot be read as a table"),
    ("inf.csv", ["label,t0,t1", "a,1,2", "b,2,inf"],
     r"line 3, column 't1': 'inf' is not a finite number"),
    ("nan.csv", ["label,t0,t1", "a,nan,2", "b,2,1"],
     r"line 2, column 't0': 'nan' is not a finite number"),
    ("nan.ts", ["@problemName nan", "@univariate true", "@equalLength true",
                "@seriesLength 2", "@classLabel true a b", "@data", "1,2:a", "NaN,1:b"],
     r"nan.ts: series 2 has a missing or non-finite value"),
    ("one_class.csv", ["label,t0,t1", *["a,1,2"] * 6], r"every training example has the label 'a'"),
    ("series.txt", ["label,t0", "a,1"], r"is a \.txt file; this kind reads \.ts, \.csv"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rows", "message"), BAD_INPUTS)
def test_malformed_series_are_refused_with_one_line_and_nothing_written(
    user_conf, tmp_path, name, rows, message
):
    (tmp_path / "data").mkdir()
    if rows is not None:
        (tmp_path / "data" / name).write_text("".join(f"{row}\n" for row in rows))
    task = user_conf("bad", f"""\
        defaults: [/source/timeseries@_here_, _self_]
        name: bad
        source:
          train: data/{name}
        """)  # fmt: skip
    with pytest.raises(ConvrecError, match=message) as refused:
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "prepared").exists() or not any((tmp_path / "prepared").iterdir())


def test_a_test_class_never_seen_in_training_is_refused(user_conf, tmp_path):
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data" / "train.csv", ["label,t0,t1", "a,1,2", "b,2,1", "a,1,3", "b,3,1"])
    _csv(tmp_path / "data" / "test.csv", ["label,t0,t1", "a,1,2", "c,2,2"])
    task = user_conf("unseen", """\
        defaults: [/source/timeseries@_here_, _self_]
        name: unseen
        source: {train: data/train.csv, test: data/test.csv}
        """)  # fmt: skip
    with pytest.raises(ConvrecError, match=r"test labels \['c'\] never occur in the train split"):
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")


def test_a_task_yaml_without_its_train_file_says_which_key_to_set(user_conf, tmp_path):
    task = user_conf("unset", """\
        defaults: [/source/timeseries@_here_, _self_]
        name: unset
        """)  # fmt: skip
    with pytest.raises(ConvrecError, match=r"task unset: task.source.train is not set; set it in "
                       r"conf/task/unset.yaml"):  # fmt: skip
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")


def test_a_dataset_too_small_for_the_learning_rate_schedule_is_one_line(user_conf, tmp_path):
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data" / "few.csv", _series_rows(12, 8))
    task = user_conf("few", """\
        defaults: [/source/timeseries@_here_, _self_]
        name: few
        source: {train: data/few.csv}
        """)  # fmt: skip
    prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(tmp_path / "conf", "train", [
        "task=few", "model=fcn", "profile=tiny", f"paths.prepared={tmp_path / 'prepared'}",
        f"tracking.uri={uri}",
    ])  # fmt: skip
    with pytest.raises(ConvrecError, match=r"the run has 1 optimizer steps in all, too few for "
                       r"the one-cycle learning-rate schedule"):  # fmt: skip
        train(cfg)
