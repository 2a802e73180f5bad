"""Source kinds: loaders for a user's own data, chosen by a task's `source.kind` and configured
in YAML only (conf/task/<name>.yaml, with the kind's defaults from conf/source/<kind>.yaml).
A built-in task has a loader of its own under convrec.data.tasks instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from convrec.data.checksums import digest
from convrec.errors import ConvrecError
from convrec.paths import project_root
from convrec.registry import Registry

Labelled = tuple[list, list[str]]  # examples (series, texts, image files) and their labels

KINDS: Registry = Registry("source kind", "convrec.data.kinds", "source")


def source_file(
    value: str | None, key: str, task: str, root: Path, suffixes: tuple[str, ...]
) -> Path:
    """A source path of the task's YAML (relative to the project root, or absolute), refused
    with one line when it is not set, does not exist, is an empty file or is of a type the kind
    does not read."""
    where = f"conf/task/{task}.yaml"
    if not value:
        raise ConvrecError(f"task {task}: {key} is not set; set it in {where}")
    path = Path(value) if Path(value).is_absolute() else root / value
    if not path.exists():
        raise ConvrecError(f"task {task}: {key}={value} does not exist ({path}); fix it in "
                           f"{where}")  # fmt: skip
    if path.is_file() and path.stat().st_size == 0:
        raise ConvrecError(f"{path} is empty; it must hold the task's labelled examples")
    if suffixes and path.suffix.lower() not in suffixes:
        kind = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise ConvrecError(f"task {task}: {key}={value} is {kind}; this kind reads "
                           f"{', '.join(suffixes)} files")  # fmt: skip
    return path


def checksums(paths: dict[str, Path]) -> dict[str, str]:
    """meta.json's `sources`: each file as the task's YAML names it -> its sha256."""
    return {name: digest(path) for name, path in paths.items()}


def read_table(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """A CSV, TSV or Parquet file as a table holding `columns` ({setting: column name}), or one
    line naming the file and what is wrong (a ragged row, a missing column)."""
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except Exception as err:  # a ragged row, a broken file: pandas says where
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConvrecError(f"{path} cannot be read as a table ({reason})") from None
    for setting, column in columns.items():
        if column not in table.columns:
            raise ConvrecError(f"{path} has no column {column!r} (its columns: "
                               f"{', '.join(map(str, table.columns[:8]))}); set "
                               f"source.{setting} to the right column")  # fmt: skip
    if table.empty:
        raise ConvrecError(f"{path} has a header but no rows")
    return table


def table_line(path: Path, row: int) -> str:
    """Where a table's row (0-based, after the header) is, as its file's reader sees it."""
    return f"row {row + 1}" if path.suffix.lower() == ".parquet" else f"line {row + 2}"


def labels_of(column: pd.Series, path: Path) -> list[str]:
    """A table's labels as strings; a missing one is refused with its line."""
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise ConvrecError(f"{path}, {table_line(path, row)}: the label is missing")
    return [str(label) for label in column]


def two_classes(labels: list[str], path: Path) -> None:
    if len(set(labels)) < 2:
        raise ConvrecError(f"{path}: every training example has the label {labels[0]!r}; a "
                           "classifier needs at least two classes")  # fmt: skip


def stratified_split(
    items: tuple[list, list[str]], fraction: float, seed: int, where: str
) -> tuple[tuple[list, list[str]], tuple[list, list[str]]]:
    """Hold out about `fraction` of each class as the test split (seeded), keeping at least one
    example of each class for training."""
    if not 0 < float(fraction) < 1:
        raise ConvrecError(f"source.test_fraction={fraction} must be between 0 and 1 (or set "
                           "source.test to a file of test examples)")  # fmt: skip
    data, labels = items
    rng = np.random.default_rng(seed)
    test_index: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        take = min(len(members) - 1, int(round(len(members) * float(fraction))))
        test_index += rng.permutation(members)[:take].tolist()
    if not test_index:
        raise ConvrecError(f"{where}: test_fraction={fraction} holds out nothing; raise it, "
                           "or set source.test to a file of test examples")  # fmt: skip
    held = set(test_index)
    order = sorted(held)
    rest = [i for i in range(len(labels)) if i not in held]
    return ([data[i] for i in rest], [labels[i] for i in rest]), (
        [data[i] for i in order], [labels[i] for i in order])


def read_splits(
    cfg: DictConfig, suffixes: tuple[str, ...], read: Callable[[Path], Labelled]
) -> tuple[Labelled, Labelled, dict[str, Path]]:
    """The train and test examples of a user's task: `read` of `source.train` and of
    `source.test`, or a seeded, stratified `source.test_fraction` of train; train holds at
    least two classes. Also the paths read, keyed as the task's YAML names them."""
    source, root = cfg.source, project_root()
    paths = {source.train: source_file(source.train, "source.train", cfg.name, root, suffixes)}
    if source.get("test"):
        paths[source.test] = source_file(source.test, "source.test", cfg.name, root, suffixes)
    check_declared(cfg.name, paths, root)
    train = read(paths[source.train])
    if source.get("test"):
        test = read(paths[source.test])
    else:
        train, test = stratified_split(train, source.test_fraction, int(cfg.split_seed),
                                       str(paths[source.train]))  # fmt: skip
    two_classes(train[1], paths[source.train])
    return train, test, paths


def check_declared(task: str, paths: dict[str, Path], root: Path) -> None:
    """A task of conf/pipeline.yaml's `sources` reads only files inside the path declared there,
    which its DVC stage depends on: a file outside it could change while `dvc repro` calls the
    task's prepared data and results up to date."""
    pipeline = root / "conf" / "pipeline.yaml"
    declared = (OmegaConf.load(pipeline).get("sources") or {}).get(task) if pipeline.is_file() \
        else None  # fmt: skip
    if declared is None:
        return
    base = (root / str(declared)).resolve()
    for name, path in paths.items():
        if path.resolve() != base and base not in path.resolve().parents:
            raise ConvrecError(
                f"task {task}: {name} is outside {declared}, which conf/pipeline.yaml declares as "
                f"its sources (the path its prepare stage depends on, so DVC would not see the "
                f"file change); move the file there or declare a folder that holds it"
            )
