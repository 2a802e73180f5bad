"""convrec.quick_exit: a finished stage skips the interpreter's collections and loses nothing."""

from __future__ import annotations

import subprocess
import sys

_ENDING = """
import atexit, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from convrec.quick_exit import exit_now

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
# an executor left open: its worker waits for threading's exit hook (joblib's loky, Hydra's
# joblib launcher); joining it before that hook runs would hang
pool = ThreadPoolExecutor(1)
pool.submit(lambda: (time.sleep(0.3), (out / "pool").write_text("done")))
scratch = tempfile.TemporaryDirectory()  # removed by its finalizer at exit
(out / "scratch").write_text(scratch.name)
print("unflushed", end="")  # a pipe buffers it
exit_now(0)
"""


def test_exit_now_runs_threads_hooks_and_flushes_then_exits_0(tmp_path):
    done = subprocess.run([sys.executable, "-c", _ENDING, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "unflushed" and done.stderr == ""
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "pool").read_text() == "done"
    assert not (tmp_path / (tmp_path / "scratch").read_text()).exists()
