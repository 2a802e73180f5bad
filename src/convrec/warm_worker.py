"""Train stages under `dvc repro` start in a process that has torch, Lightning and MLflow loaded.

Importing them costs a train stage about 6 s of its 7-10 s outside `fit` on 2 cores (measured
with `python -X importtime`), and `dvc repro` runs ~90 train stages one after the other, each a
new process. Under DVC (which sets DVC_STAGE in every stage's environment) the first train stage
starts a worker in the background and runs as before; the worker imports those libraries,
never the lab's own code, and waits on a Unix socket. Each later stage's process hands its
command line, folder, environment, umask and standard streams to the worker, which forks a
copy that runs `pipelines/train.py` exactly as the stage would have (the lab's code is imported
fresh in the copy, so an edit between stages is seen), and the stage's process waits for it:
it passes on SIGINT, SIGTERM, SIGHUP and SIGQUIT, and exits with the copy's status (a copy
killed by a signal: the stage's process dies by the same signal). If the stage's process dies,
the copy gets SIGTERM, the lab's honest stop (exit 143, MLflow run KILLED).

A worker serves one interpreter, one set of installed packages and one environment (the key of
its socket; DVC_STAGE aside); with no stage running it leaves after IDLE_SECONDS. Nothing
changes for a command typed by hand, with interpreter options, or a DDP rank: those start cold.
Anything that goes wrong before the copy starts (no worker, a worker still importing that
fails, a refused connection) also falls back to a cold start.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import types
from pathlib import Path

IDLE_SECONDS = 60.0  # a stage's DVC bookkeeping or a prepare stage between two train stages
# What every train stage imports and no edit of the lab changes: the worker loads these once.
PRELOAD = (
    "torch", "lightning.pytorch", "lightning.pytorch.loggers", "torchmetrics", "mlflow",
    "mlflow.store.tracking.sqlalchemy_store", "hydra", "hydra.utils", "omegaconf", "scipy.stats",
    "numpy", "pandas", "optuna", "rich",
)  # fmt: skip
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PER_STAGE = ("DVC_STAGE",)  # what DVC changes from one stage to the next
FORWARD_STREAMS = (0, 1, 2)
in_worker = False  # set in the worker's copy: its script runs on, instead of handing over


def hand_over(script: str) -> None:
    """In a DVC stage, run `script`'s command in the worker and exit with its status; return
    (and let the caller run cold) when there is no worker yet, starting one for later stages."""
    if in_worker or not _eligible():
        return
    path = socket_path(script)
    if not _private(path.parent):  # someone else's folder at that name: no worker
        return
    conn = _connect(path)
    if conn is None:
        _start_worker(script, path)
        return
    status = _run_in_worker(conn, script)
    if status is None:  # the worker ended before the copy started: nothing ran, run cold
        return
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: so is this process, as a shell would see it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _eligible() -> bool:
    interpreter_options = sys.orig_argv[1:2] != sys.argv[:1]  # -X importtime, -O, -W ...
    ranks = {"LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "SLURM_PROCID"} & os.environ.keys()
    return "DVC_STAGE" in os.environ and not interpreter_options and not ranks


def socket_path(script: str) -> Path:
    """The worker's socket for this interpreter, packages, script folder and environment."""
    packages = Path(sysconfig.get_paths()["purelib"])
    key = {
        "python": sys.executable, "path": sys.path[1:], "script": str(Path(script).resolve()),
        "packages": packages.stat().st_mtime_ns, "worker": Path(__file__).stat().st_mtime_ns,
        "env": sorted((k, v) for k, v in os.environ.items() if k not in PER_STAGE),
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    return sockets_dir() / f"{digest}.sock"


def sockets_dir() -> Path:
    """This user's folder of worker sockets, which only the user may enter: a stage hands a
    worker its environment (MLflow credentials among it) and its streams."""
    return Path(tempfile.gettempdir()) / f"convrec-warm-{os.getuid()}"


def _private(folder: Path) -> bool:
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:  # no worker, or a dead one's socket file
        conn.close()
        return None
    return conn


def _start_worker(script: str, path: Path) -> None:
    code = f"from convrec.warm_worker import serve; serve({script!r}, {str(path)!r})"
    subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
    )  # fmt: skip


def _run_in_worker(conn: socket.socket, script: str) -> int | None:
    """Send the command; return the copy's wait status, or None if it never started."""
    umask = os.umask(0)
    os.umask(umask)
    request = {"script": script, "argv": sys.argv, "cwd": os.getcwd(), "umask": umask,
               "env": dict(os.environ)}  # fmt: skip
    pending: list[int] = []
    child: list[int] = []

    def forward(signum: int, _frame) -> None:
        if child:
            os.kill(child[0], signum)
        else:
            pending.append(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        payload = json.dumps(request).encode()
        # length first: the socket stays open both ways, so the worker sees this process end
        socket.send_fds(conn, [b"%d\n" % len(payload) + payload], list(FORWARD_STREAMS))
        reply = conn.makefile("rb")
        started = reply.readline()
        if not started:
            return None
        child.append(int(started))
        for signum in pending:
            os.kill(child[0], signum)
        ended = reply.readline()
        if not ended:  # the worker died under the copy: stop the copy, do not guess a status
            _stop(child[0])
            print("convrec: the warm worker ended before the stage did; run it again",
                  file=sys.stderr)  # fmt: skip
            return 1 << 8
        return int(ended)
    except OSError:
        return None if not child else 1 << 8
    finally:
        conn.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(pid: int, seconds: float = 60.0) -> None:
    """SIGTERM to the copy (the lab's honest stop), and wait until it has gone."""
    deadline = time.monotonic() + seconds
    try:
        os.kill(pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
    except ProcessLookupError:
        pass


def serve(script: str, path: str) -> None:
    """The worker: own the socket, import PRELOAD, fork a handler per stage, leave when idle,
    when its socket is removed, or on SIGTERM."""
    sys.path[0] = str(Path(script).resolve().parent)  # as in the stage: its imports resolve alike
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if not _private(Path(path).parent):
        return
    try:
        listener.bind(path)
    except OSError:
        if (other := _connect(Path(path))) is not None:
            other.close()
            return  # another worker got there first
        os.unlink(path)  # a dead worker's socket
        listener.bind(path)
    listener.listen(16)
    inode = _inode(path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _preload()
        _accept_stages(listener, path, inode)
    finally:
        listener.close()
        if _inode(path) == inode:  # still this worker's socket
            os.unlink(path)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # an optional library this environment lacks; its stage imports it or fails


def _accept_stages(listener: socket.socket, path: str, inode: int | None) -> None:
    handlers: set[int] = set()
    last = time.monotonic()
    while True:
        for pid in list(handlers):
            if os.waitpid(pid, os.WNOHANG)[0]:
                handlers.discard(pid)
                last = time.monotonic()
        if select.select([listener], [], [], 1.0)[0]:
            conn, _ = listener.accept()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _handle(conn)  # never returns
            conn.close()
            handlers.add(pid)
        elif not handlers and time.monotonic() - last > IDLE_SECONDS:
            return
        elif _inode(path) != inode:  # removed, or a newer worker's: stop serving
            return


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _handle(conn: socket.socket) -> None:
    """A handler: fork the stage's copy, tell the stage its pid, wait, send its wait status."""
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, len(FORWARD_STREAMS))
        length, _, payload = message.partition(b"\n")
        while len(payload) < int(length):
            if not (chunk := conn.recv(1 << 20)):
                raise OSError("the stage's process left mid-request")
            payload += chunk
        request = json.loads(payload)
    except (OSError, ValueError):
        os._exit(1)  # the stage sees no pid and starts cold
    child = os.fork()
    if child == 0:
        conn.close()
        _become_stage(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(f"{child}\n".encode())
    except OSError:
        os.kill(child, signal.SIGTERM)
    status, stage_gone = None, False
    while status is None:
        pid, wait_status = os.waitpid(child, os.WNOHANG)
        if pid:
            status = wait_status
            break
        readable = select.select([conn], [], [], 0.05)[0]
        if readable and not stage_gone and not conn.recv(1):  # the stage's process is gone
            stage_gone = True
            os.kill(child, signal.SIGTERM)
    try:
        conn.sendall(f"{status}\n".encode())
    except OSError:
        pass
    os._exit(0)


def _become_stage(request: dict, fds: list[int]) -> None:
    """Turn this copy of the worker into the stage's process, then run its script."""
    global in_worker
    for target, fd in zip(FORWARD_STREAMS, fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (*FORWARDED, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
    in_worker = True
    # a `__main__` as `python <script>` makes it (runpy.run_path would rewrite sys.argv[0])
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=script, __builtins__=builtins, __spec__=None)
    sys.modules["__main__"] = main
    code = 0
    try:
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
    # through the imported module, whose `in_worker` the stage's script reads (not __main__'s)
    from convrec import warm_worker

    warm_worker.serve(sys.argv[1], str(warm_worker.socket_path(sys.argv[1])))
