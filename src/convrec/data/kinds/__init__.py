"""Source kinds: loaders for a user's own data, chosen by a task's `source.kind` and configured
in YAML only (conf/task/<name>.yaml, with the kind's defaults from conf/source/<kind>.yaml).
A built-in task has a loader of its own under convrec.data.tasks instead."""

from __future__ import annotations

from pathlib import Path

from convrec.data.checksums import digest
from convrec.errors import ConvrecError
from convrec.registry import Registry

KINDS: Registry = Registry("source kind", "convrec.data.kinds", "source")


def source_file(
    value: str | None, key: str, task: str, root: Path, suffixes: tuple[str, ...]
) -> Path:
    """A source path of the task's YAML (relative to the project root, or absolute), refused
    with one line when it is not set, does not exist or is of a type the kind does not read."""
    where = f"conf/task/{task}.yaml"
    if not value:
        raise ConvrecError(f"task {task}: {key} is not set; set it in {where}")
    path = Path(value) if Path(value).is_absolute() else root / value
    if not path.exists():
        raise ConvrecError(f"task {task}: {key}={value} does not exist ({path}); fix it in "
                           f"{where}")  # fmt: skip
    if suffixes and path.suffix.lower() not in suffixes:
        kind = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise ConvrecError(f"task {task}: {key}={value} is {kind}; this kind reads "
                           f"{', '.join(suffixes)} files")  # fmt: skip
    return path


def checksums(paths: dict[str, Path]) -> dict[str, str]:
    """meta.json's `sources`: each file as the task's YAML names it -> its sha256."""
    return {name: digest(path) for name, path in paths.items()}
