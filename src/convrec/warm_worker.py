"""The pre-imported worker that train stages under `dvc repro` hand their command to
(convrec.warm_start says why and how a stage uses it).

`serve` owns one socket (and its lock), imports PRELOAD, and forks a handler per connection.
A handler reads the stage's request, forks the copy, sends the stage its pid and waits for the
stage's go before the copy starts (a stage that gave up meanwhile starts cold, and the copy
never runs); then it waits for the copy and sends its wait status. If the stage's process
goes, the copy gets SIGTERM, and SIGKILL after warm_start.STOP_SECONDS. Forked children never
return into the worker's loop: whatever happens in them ends in `os._exit`.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import types
from pathlib import Path

from convrec import warm_start

IDLE_SECONDS = 60.0  # DVC's bookkeeping, or a prepare stage, between two train stages
# What every train stage imports and no edit of the lab changes: the worker loads these once.
PRELOAD = (
    "torch", "lightning.pytorch", "lightning.pytorch.loggers", "torchmetrics", "mlflow",
    "mlflow.store.tracking.sqlalchemy_store", "hydra", "hydra.utils", "omegaconf", "scipy.stats",
    "numpy", "pandas", "optuna", "rich",
)  # fmt: skip


def serve(script: str, path: str) -> None:
    """The worker: own the socket, import PRELOAD, fork a handler per stage; leave when idle
    for IDLE_SECONDS, when the socket is removed, or on SIGTERM."""
    sys.path[0] = str(Path(script).resolve().parent)  # as in the stage: its imports resolve alike
    if not warm_start.private(Path(path).parent):
        return
    lock = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another worker serves this key
    if os.path.exists(path):  # under the lock, a socket file is a dead worker's
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o077)
    listener.bind(path)
    os.umask(umask)
    listener.listen(16)
    inode = _inode(path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _preload()
        # A fork copies only the forking thread: no Python thread may be under way. Native
        # pools that load with the libraries (OpenBLAS's, pyarrow's jemalloc) stop and restart
        # around a fork themselves, as DataLoader's forked workers rely on; torch's own pool
        # starts at its first operation, which the worker never runs.
        if threading.active_count() == 1:
            _accept_stages(listener, lock, path, inode)
    finally:
        listener.close()
        if _inode(path) == inode:  # still this worker's socket
            os.unlink(path)
        os.unlink(f"{path}.lock")  # held until now: no other worker of this key got past it


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional library this environment lacks; its stage imports it or fails


def _accept_stages(listener: socket.socket, lock: int, path: str, inode: int | None) -> None:
    handlers: set[int] = set()
    last = time.monotonic()
    while True:
        for pid in list(handlers):
            if os.waitpid(pid, os.WNOHANG)[0]:
                handlers.discard(pid)
                last = time.monotonic()
        if select.select([listener], [], [], 1.0)[0]:
            conn, _ = listener.accept()
            pid = os.fork()
            if pid == 0:
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    listener.close()
                    os.close(lock)  # the lock is the worker's alone, not its stages'
                    _handle(conn)
                finally:
                    os._exit(1)
            conn.close()
            handlers.add(pid)
        elif not handlers and time.monotonic() - last > IDLE_SECONDS:
            return
        elif _inode(path) != inode:  # removed: stop serving
            return


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _handle(conn: socket.socket) -> None:
    """A handler: fork the stage's copy, send the stage its pid, start the copy on the stage's
    go, wait for it, send its wait status."""
    request, fds = _read_request(conn)
    gate, release = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            conn.close()
            os.close(release)
            if os.read(gate, 1):  # nothing: the stage went cold, this copy never runs
                os.close(gate)
                _become_stage(request, fds)
        finally:
            os._exit(1)
    os.close(gate)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{child}\n".encode())
    if _read_line(conn) == b"go":
        os.write(release, b"1")
    os.close(release)
    status = _wait(child, conn)
    try:
        conn.sendall(f"{status}\n".encode())
    except OSError:
        pass


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, len(warm_start.STREAMS))
    length, _, payload = message.partition(b"\n")
    while len(payload) < int(length):
        if not (chunk := conn.recv(1 << 20)):
            raise OSError("the stage's process left mid-request")
        payload += chunk
    return json.loads(payload), fds


def _read_line(conn: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        if not (chunk := conn.recv(1)):
            break
        line += chunk
    return line.strip()


def _wait(child: int, conn: socket.socket) -> int:
    """The copy's wait status; if the stage's process goes first, SIGTERM to the copy, then
    SIGKILL after STOP_SECONDS."""
    deadline = None
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return status
        if deadline is None:
            if select.select([conn], [], [], 0.05)[0]:
                try:
                    gone = not conn.recv(1)
                except OSError:
                    gone = True
                if gone:
                    os.kill(child, signal.SIGTERM)
                    deadline = time.monotonic() + warm_start.STOP_SECONDS
        else:
            time.sleep(0.1)
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)


def _become_stage(request: dict, fds: list[int]) -> None:
    """Turn this copy of the worker into the stage's process, then run its script."""
    for target, fd in zip(warm_start.STREAMS, fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (*warm_start.FORWARDED, signal.SIGCHLD):
        ignored = signum in request["ignored"]
        signal.signal(signum, signal.SIG_IGN if ignored else signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    for stream in (sys.stdout, sys.stderr):  # buffered as a fresh process's would be
        stream.reconfigure(line_buffering=os.isatty(stream.fileno()))
    import numpy

    numpy.random.seed(int.from_bytes(os.urandom(4), "little"))  # a fresh process's entropy
    sys.argv = list(request["argv"])
    script = str(Path(request["script"]).resolve())
    sys.path[0] = str(Path(script).parent)
    warm_start.in_worker = True
    # a `__main__` as `python <script>` makes it (runpy.run_path would rewrite sys.argv[0])
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=script, __builtins__=builtins, __spec__=None)
    sys.modules["__main__"] = main
    code = 0
    try:
        if signal.SIGINT not in request["ignored"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        exec(compile(Path(script).read_bytes(), script, "exec"), main.__dict__)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except KeyboardInterrupt:  # uncaught: Python dies by SIGINT after its shutdown
        sys.excepthook(*sys.exc_info())
        _leave(None, signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    _leave(code)


def _leave(code: int | None, signum: int | None = None) -> None:
    """Leave as the interpreter would, minus its collections (convrec.quick_exit)."""
    from convrec.quick_exit import shut_down

    shut_down()
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(code or 0)


if __name__ == "__main__":  # a worker in the foreground: python -m convrec.warm_worker <script>
    serve(sys.argv[1], str(warm_start.socket_path(sys.argv[1])))
