"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from convrec.redaction import redact_logging, redact_text


class ConvrecError(Exception):
    """A problem the user can fix (bad name, bad value, corrupt file).

    The message is printed alone on one line, without a traceback, so it must
    say what is wrong and what to do about it.
    """

    exit_code = 2  # bad input: refused before any expensive work


class Diverged(ConvrecError):
    """A training run's loss became NaN or infinite: a result (the run failed), not a success.

    Raised by the LightningModule with the stage, epoch and step; the training code adds which
    run it was. Its exit status differs from bad input's, which is refused before training."""

    exit_code = 3


class Interrupted(BaseException):
    """SIGTERM (what SLURM, systemd and Kubernetes send) or SIGINT (Ctrl+C) arrived.

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it: it unwinds
    every context on its way out (the MLflow run ends KILLED, a staging folder is removed) and
    the process exits 128 + the signal's number, as a shell reports a process the signal
    killed (143 for SIGTERM, 130 for SIGINT), so a scheduler never reads it as a success."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Code a stop is not raised in: raised inside the MLflow SQL store's session or connection-pool
# code, it can leave a connection holding SQLite's write lock, and every later write of the
# process (the run's KILLED status among them) then fails with "database is locked" (seen in
# a test: exit 1 and a run left FAILED instead of 130 and KILLED). The stop waits until the
# main thread has left such code, checked every RETRY_SECONDS.
UNINTERRUPTIBLE = ("/sqlalchemy/", "/mlflow/store/", "/sqlite3/")
RETRY_SECONDS = 0.02


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise Interrupted where the main thread is; a
    second one while the first unwinds is ignored, so the clean-up finishes. Lightning wraps
    the handler during `fit` (it keeps handlers it finds), so it fires there too: without
    this, Lightning turns SIGTERM into an exit without a code (0) and SIGINT into exit 1."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; a launcher's worker thread has its own
        return
    _stop.clear()

    def stop(signum, frame) -> None:
        if _stop.get("stopping"):
            return
        if _uninterruptible(frame):  # again in a moment (SIGALRM), out of the store's code
            _stop["deferred"] = signum
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        raise interrupted(signum)

    def retry(_signum, frame) -> None:
        if (signum := _stop.get("deferred")) is not None:
            stop(signum, frame)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, retry)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_stop: dict = {}  # "stopping": a stop is under way; "deferred": the signal waiting for SIGALRM


def interrupted(signum: int) -> Interrupted:
    """The stop for `signum`, marked as under way: a later signal, or one deferred, is then
    ignored, so the clean-up finishes. For a stop that arrives some other way than the handler
    of stop_on_signals (Lightning's own SIGTERM exit)."""
    _stop["stopping"] = True
    _stop.pop("deferred", None)
    signal.setitimer(signal.ITIMER_REAL, 0)
    return Interrupted(signum)


def _uninterruptible(frame) -> bool:
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in UNINTERRUPTIBLE):
            return True
        frame = frame.f_back
    return False


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ConvrecError into one line on stderr and a non-zero exit, and SIGTERM or
    SIGINT into one line and exit 128 + the signal.

    SystemExit is a BaseException, so Hydra's error reporter (which catches
    Exception and prints a trimmed traceback) lets it through untouched. From here on, log
    records and the error line carry no credential (convrec.redaction).
    """
    redact_logging()
    try:
        with stop_on_signals():
            yield
    except ConvrecError as err:
        message = redact_text(" ".join(str(err).split()))
        print(f"convrec: error: {message}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    except Interrupted as stop:
        print(f"convrec: {stop}; earlier results are unchanged (a training run resumes from "
              "its last checkpoint when the same command runs again)", file=sys.stderr,
              flush=True)  # fmt: skip
        sys.exit(stop.exit_code)
