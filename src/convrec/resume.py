"""Where a run lives until it is published, so that rerunning the same command after a crash,
a kill or a signal resumes it instead of starting again.

A run works in <paths.partial>/<task>/<model>/<key>/, `key` a hash of its resolved config: the
same command finds the same folder, a changed config starts afresh (and the stale folder of the
old config is removed). The folder holds the results as they grow (history, checkpoints with
checkpoints/last.ckpt, see convrec.lit.resume), `resume.json` (the MLflow run to reopen) and
`owner.json` (the process at work there). It sits beside results/, never inside it, so compare
never reads it; on success it is published as results/<task>/<model> in one rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from convrec.atomic import publish_dir, write_json
from convrec.errors import ConvrecError
from convrec.processes import alive, this_process

STATE = "resume.json"
OWNER = "owner.json"
LAST = Path("checkpoints") / "last.ckpt"


def config_key(cfg: DictConfig) -> str:
    """The run's identity: its whole resolved config (hyperparameters, protocol, seed(s),
    paths). Twelve hex digits of its SHA-256."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def partial_dir(cfg: DictConfig, root: Path) -> Path:
    return root / cfg.paths.partial / cfg.task.name / cfg.model.name / config_key(cfg)


def _read_json(path: Path) -> dict:
    """A resume file's contents; {} where it is missing or cut short by a kill."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_state(folder: Path) -> dict:
    return _read_json(folder / STATE)


def write_state(folder: Path, state: dict) -> None:
    write_json(folder / STATE, state)


def can_resume(folder: Path) -> bool:
    """An interrupted run left a checkpoint and the MLflow run it logged to."""
    return (folder / LAST).is_file() and bool(read_state(folder).get("run_id"))


def start_afresh(folder: Path) -> None:
    """Empty the folder of what an interrupted run left before its first checkpoint."""
    for entry in list(folder.iterdir()) if folder.is_dir() else []:
        if entry.name != OWNER:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@contextmanager
def resumable_dir(folder: Path, final: Path) -> Iterator[Path]:
    """Yield the run's working folder, kept from an interrupted run of the same config or new;
    publish it as `final` in one rename when the block succeeds (without last.ckpt and the
    resume files). A signal or a crash keeps it for the rerun to resume; a run that diverged or
    was refused (ConvrecError) loses it, as resuming would only repeat that."""
    _claim(folder)
    try:
        yield folder
    except ConvrecError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finish(folder)
    publish_dir(folder, final)
    (final / OWNER).unlink(missing_ok=True)  # kept until now: siblings' runs leave it alone
    _remove_empty_parents(folder.parent)


def finish(folder: Path) -> None:
    """Drop what only a resume needs: last.ckpt (the best checkpoint stays) and the state."""
    for name in (LAST, Path(STATE)):
        (folder / name).unlink(missing_ok=True)


def _claim(folder: Path) -> None:
    """Make `folder` this process's, with owner.json in it from the first instant (a new folder
    is made beside and renamed into place), so that no sibling run takes it for stale. One that
    a live process holds is refused; one whose process is gone is taken over (the resume)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(folder)
    if not folder.is_dir():
        fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        write_json(fresh / OWNER, this_process())
        try:
            os.rename(fresh, folder)
            return
        except OSError:  # another process made it first: it is checked below
            shutil.rmtree(fresh, ignore_errors=True)
    owner = _read_owner(folder)
    if owner and alive(owner) and owner.get("pid") != os.getpid():
        raise ConvrecError(
            f"another process (pid {owner['pid']} on {owner['host']}) is training this run in "
            f"{folder}; wait for it to end or stop it"
        )
    write_json(folder / OWNER, this_process())


def _read_owner(folder: Path) -> dict:
    return _read_json(folder / OWNER)


def _remove_stale_siblings(folder: Path) -> None:
    """Folders of the same (task, model) under another config: nobody can resume them now
    (their config is not this command's), unless a live process still works there."""
    if not folder.parent.is_dir():
        return
    for sibling in folder.parent.iterdir():
        if sibling.name.startswith("."):  # one being made (_claim) or moved aside (publish_dir)
            continue
        if sibling != folder and sibling.is_dir() and not alive(_read_owner(sibling)):
            shutil.rmtree(sibling, ignore_errors=True)


def _remove_empty_parents(path: Path) -> None:
    for parent in (path, path.parent, path.parent.parent):  # <model>, <task>, <partial> itself
        try:
            parent.rmdir()
        except OSError:
            return
