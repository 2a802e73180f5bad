"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


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


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ConvrecError into one line on stderr and a non-zero exit.

    SystemExit is a BaseException, so Hydra's error reporter (which catches
    Exception and prints a trimmed traceback) lets it through untouched.
    """
    try:
        yield
    except ConvrecError as err:
        message = " ".join(str(err).split())
        print(f"convrec: error: {message}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
