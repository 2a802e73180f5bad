"""Which process works on something (a run folder, an MLflow run), and whether it still does.

A run records this when it starts; a later process that finds the run unfinished asks `alive`
to tell a run in progress from one whose process was killed (SIGKILL, the OOM killer, a lost
node), which nothing else could mark as ended.
"""

from __future__ import annotations

import os
import socket

import psutil


def this_process() -> dict:
    """Who works on a folder or a run: enough to tell later whether that process still lives
    (a pid alone may be reused by another process)."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "process_started": psutil.Process().create_time()}  # fmt: skip


def alive(owner: dict) -> bool:
    """Whether the process `owner` names (this_process) still runs. Processes of another host
    cannot be checked from here: they count as alive."""
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        started = psutil.Process(int(owner["pid"])).create_time()
    except (psutil.Error, KeyError, ValueError):
        return False
    return abs(started - float(owner.get("process_started", 0))) < 1.0


def process_tags() -> dict[str, str]:
    """this_process() as MLflow tags (strings), which `alive` reads back as they are, and the
    SLURM job the process runs in, if any (to find its log and accounting from the run)."""
    tags = {key: str(value) for key, value in this_process().items()}
    if os.environ.get("SLURM_JOB_ID"):
        tags["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
    return tags
