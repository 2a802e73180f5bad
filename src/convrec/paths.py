"""Where the project lives on disk, found the same way by DVC stages, tests and users."""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) that holds dvc.yaml: where a
    stage reads and writes its files. A queued DVC experiment's copy under
    `<repo>/.dvc/tmp/exps/` is its own workspace: its outputs must land in it."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here


def store_root(root: Path) -> Path:
    """The project whose MLflow store a run in `root` goes to: `root` itself, or for a queued
    DVC experiment's copy (`<repo>/.dvc/tmp/exps/...`) the enclosing repository, so that
    every run lands in the project's one store."""
    parts = Path(root).resolve().parts
    return Path(*parts[: parts.index(".dvc")]) if ".dvc" in parts else Path(root).resolve()
