"""Put on PYTHONPATH by the end-to-end test: every Python process its `dvc repro` starts
imports this at start-up and, as it exits, records its command line and every file it loaded
into $CONVREC_RECORD_IMPORTS/<pid>.json (with its parent's pid: a stage's worker processes
load code for it too). tests/stage_deps.py checks them against dvc.yaml."""

import atexit
import json
import os
import sys


def _record() -> None:
    folder = os.environ.get("CONVREC_RECORD_IMPORTS")
    if not folder:
        return
    files = sorted({f for m in list(sys.modules.values()) if (f := getattr(m, "__file__", None))})
    with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as handle:
        json.dump(
            {"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv, "files": files}, handle
        )


atexit.register(_record)
