"""Write files and folders so that a reader sees the old version or the new one, never half.

Everything goes to a temporary sibling first and is renamed into place; a
rename within one filesystem is atomic.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)  # reading the umask means setting it; put it straight back


def _open_permissions(path: str | Path, mode: int) -> None:
    """mkstemp/mkdtemp make private (0600/0700) entries; published ones follow the umask."""
    os.chmod(path, mode & ~_UMASK)


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _open_permissions(tmp, 0o666)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Strict JSON: a NaN or infinity (which strict parsers reject) raises instead of being
    written as a bare `NaN`; write None where a value may be missing."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `final` only if the block succeeds.

    On failure the temporary folder is removed and `final`, if it existed, is
    left exactly as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    _open_permissions(tmp, 0o777)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, final)


def publish_dir(ready: Path, final: Path) -> None:
    """Put the folder `ready` in place of `final` (same filesystem): the old one is moved aside
    first, so a reader finds the old folder or the new one; at worst, for an instant, none.
    Parallel publishers of one folder (the jobs of a sweep) each get theirs in; the last wins."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(20):
        old = final.with_name(f".{final.name}.old.{os.getpid()}.{attempt}")
        try:
            os.replace(final, old)
        except FileNotFoundError:  # nothing there, or another publisher moved it first
            old = None
        try:
            os.replace(ready, final)
            return
        except OSError as err:  # another publisher's folder landed there in between: again
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"could not publish {ready} as {final}: other processes kept replacing it")
