"""End a stage's process that has finished its work, without Python's last garbage collections.

When a stage has written everything, CPython's shutdown still collects garbage over every object
torch, Lightning and MLflow made (about 660,000): 2.5-3.6 s of a tiny train stage on 2 cores
(measured), about 115 x 3 s of a one-seed `dvc repro`. `exit_now` ends the process as that
shutdown would, in its order, minus the collections: threading's exit hooks (what
`concurrent.futures` and joblib's executors wait on), then non-daemon threads joined, then the
atexit handlers (MLflow ends its runs and flushes its asynchronous queue, logging flushes its
files, weakref finalizers remove temporary folders), the standard streams flushed, `os._exit`.

Only for success: an error or a signal leaves through Python's usual exit, whose status and
one line are the contract. Freezing the heap at exit (`gc.freeze`) saves the same time, but
then the interpreter still tears modules down, and triton's bindings report ~30 "leaked"
objects on stderr there; `os._exit` never reaches that point.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    """Run what interpreter shutdown runs before its collections, then leave with `code`."""
    shut_down()
    os._exit(code)


def shut_down() -> None:
    """Interpreter shutdown's steps before its collections: threading's exit hooks and joins,
    the atexit handlers, the standard streams flushed."""
    shutdown = getattr(threading, "_shutdown", None)  # CPython's own first step of shutdown
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass  # a closed or replaced stream: nothing left to write
