"""Train stages under `dvc repro` start in a process that has torch, Lightning and MLflow loaded.

Importing them costs a train stage about 6 s of its 7-10 s outside `fit` on 2 cores (measured
with `python -X importtime`), and `dvc repro` runs ~90 train stages one after the other, each a
new process. Under DVC (which sets DVC_STAGE in every stage's environment) the first train stage
starts a worker in the background (convrec.warm_worker) and runs as before; the worker imports
those libraries, never the lab's own code, and waits on a Unix socket. Each later stage's
process (`hand_over`, here) sends the worker its command line, folder, environment, umask and
standard streams; the worker forks a copy that runs `pipelines/train.py` exactly as the stage
would have (the lab's code is imported fresh in the copy, so an edit between stages is seen),
and this process waits for it: it passes on SIGINT, SIGTERM, SIGHUP and SIGQUIT (those it does
not ignore) and exits with the copy's status; a copy killed by a signal kills it with the same
signal. The copy starts only when this process has its pid and says go, so no stage runs twice;
if this process dies, the copy gets SIGTERM, the lab's honest stop (exit 143, MLflow run KILLED).

A worker serves one interpreter, one set of installed packages, one environment (DVC_STAGE
aside) and one set of process limits: the key of its socket, in a folder only this user may
enter. A command typed by hand, one with interpreter options, and a DDP rank start cold; so does
a stage when anything fails before its copy starts (no worker yet, a worker that does not
answer within START_SECONDS, a refused connection).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

START_SECONDS = 60.0  # a worker still importing answers within seconds; a stuck one: go cold
STOP_SECONDS = 60.0  # a copy's honest stop (SIGTERM) before it is killed outright
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PER_STAGE = ("DVC_STAGE",)  # what DVC changes from one stage to the next
STREAMS = (0, 1, 2)
MAX_SOCKET_PATH = 100  # AF_UNIX paths hold 107 bytes on Linux
in_worker = False  # set in the worker's copy: the script runs on there instead of handing over


def hand_over(script: str) -> None:
    """In a DVC stage, run `script`'s command in the worker and exit with its status; return
    (and let the caller run cold) when there is no worker yet, starting one for later stages."""
    if in_worker or not _eligible():
        return
    try:
        path = socket_path(script)
        if len(os.fsencode(path)) > MAX_SOCKET_PATH or not private(path.parent):
            return
        conn = _connect(path)
        if conn is None:
            _start_worker(script, path)
            return
    except OSError:  # no worker this time: the stage runs as it always could
        return
    status = _run_in_worker(conn, script)
    if status is None:  # the copy never started: nothing ran, run cold
        return
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: so is this process, as a shell would see it
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def _eligible() -> bool:
    interpreter_options = sys.orig_argv[1:2] != sys.argv[:1]  # -X importtime, -O, -W ...
    ranks = {"LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "SLURM_PROCID"} & os.environ.keys()
    return "DVC_STAGE" in os.environ and not interpreter_options and not ranks


def socket_path(script: str) -> Path:
    """The worker's socket for this interpreter, packages, script, environment and limits."""
    packages = Path(sysconfig.get_paths()["purelib"])
    limits = {name: resource.getrlimit(getattr(resource, name))
              for name in dir(resource) if name.startswith("RLIMIT_")}  # fmt: skip
    key = {
        "python": sys.executable, "path": sys.path[1:], "script": str(Path(script).resolve()),
        "packages": packages.stat().st_mtime_ns, "worker": _code_stamp(),
        "env": sorted((k, v) for k, v in os.environ.items() if k not in PER_STAGE),
        "cpus": sorted(os.sched_getaffinity(0)), "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "limits": limits, "cgroup": _read("/proc/self/cgroup"),
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    return sockets_dir() / f"{digest}.sock"


def _code_stamp() -> list[int]:
    here = Path(__file__).parent
    return [(here / name).stat().st_mtime_ns for name in ("warm_start.py", "warm_worker.py")]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def sockets_dir() -> Path:
    """This user's folder of worker sockets, which only the user may enter: a stage hands a
    worker its environment (MLflow credentials among it) and its streams."""
    return Path(tempfile.gettempdir()) / f"convrec-warm-{os.getuid()}"


def private(folder: Path) -> bool:
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
    """Send the command, let the copy start, wait; its wait status, or None if it never
    started (then a signal that came meanwhile stops this process)."""
    umask = os.umask(0)
    os.umask(umask)
    ignored = [s for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN]  # nohup, say
    request = {"script": script, "argv": sys.argv, "cwd": os.getcwd(), "umask": umask,
               "env": dict(os.environ), "ignored": ignored}  # fmt: skip
    pending: list[int] = []
    child: list[int] = []

    def forward(signum: int, _frame) -> None:
        if child:
            os.kill(child[0], signum)
        else:
            pending.append(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED if s not in ignored}
    try:
        payload = b"%d\n" % len(request_bytes := json.dumps(request).encode()) + request_bytes
        sent = socket.send_fds(conn, [payload], list(STREAMS))
        conn.sendall(payload[sent:])
        conn.settimeout(START_SECONDS)
        reply = conn.makefile("rb")
        try:
            started = reply.readline()
        except OSError:  # no answer in time: the worker is stuck, or gone
            started = b""
        if not started or pending:  # not started: it never will (this connection closes)
            return _stopped(pending)
        conn.settimeout(None)
        conn.sendall(b"go\n")
        child.append(int(started))
        ended = reply.readline()
        if not ended:  # the worker died under the copy: stop the copy, do not guess a status
            _stop(child[0])
            print("convrec: the warm worker ended before the stage did; run it again",
                  file=sys.stderr)  # fmt: skip
            return 1 << 8
        return int(ended)
    except OSError as err:
        if not child:
            return _stopped(pending)
        _stop(child[0])
        print(f"convrec: lost the warm worker ({err}); run the stage again", file=sys.stderr)
        return 1 << 8
    finally:
        conn.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stopped(pending: list[int]) -> None:
    """Before any copy started: a signal that came meanwhile ends this process as the lab's
    stop would (one line, 128 + the signal); none: None, the stage runs cold."""
    if pending:
        print(f"convrec: stopped by {signal.Signals(pending[0]).name}", file=sys.stderr)
        os._exit(128 + pending[0])


def _stop(pid: int) -> None:
    """SIGTERM to the copy (the lab's honest stop), and wait until it has gone; SIGKILL if it
    has not within STOP_SECONDS."""
    deadline = time.monotonic() + STOP_SECONDS
    try:
        os.kill(pid, signal.SIGTERM)
        while True:
            time.sleep(0.1)
            os.kill(pid, 0 if time.monotonic() < deadline else signal.SIGKILL)
    except ProcessLookupError:
        pass
