"""Where the project lives on disk, found the same way by DVC stages, tests and users."""

from __future__ import annotations

from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) that holds dvc.yaml.

    DVC runs queued experiments in a copy under `<repo>/.dvc/tmp/exps/`; such a
    copy reports its enclosing repository, so that every run lands in the
    project's one MLflow store.
    """
    here = Path(start or Path.cwd()).resolve()
    parts = here.parts
    if ".dvc" in parts:
        here = Path(*parts[: parts.index(".dvc")])
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here
