"""What a report was made from: device, library versions, git commit, profile, data hashes."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from convrec.tracking.mlflow_run import git_commit as tracking_commit

PACKAGES = ["torch", "lightning", "hydra-core", "dvc", "mlflow", "numpy", "pandas"]


def provenance(root: Path, table: pd.DataFrame) -> dict:
    done = table[table["status"] == "ok"]
    return {
        "git commit": git_commit(root),
        "profile": ", ".join(sorted(done["profile"].dropna().unique())) or "unknown",
        "run devices": ", ".join(sorted(done["device"].dropna().unique())) or "unknown",
        "report machine": report_machine(),
        "versions": ", ".join(f"{name} {_version(name)}" for name in ["python", *PACKAGES]),
        "data": data_hashes(root / "dvc.lock"),
    }


def git_commit(root: Path) -> str:
    """HEAD, marked "+ uncommitted changes" when tracked files differ from it (dvc.lock, which
    every stage rewrites, aside)."""
    head = tracking_commit(root)
    if head == "unknown":
        return "unknown (not a git checkout)"
    changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                              "--untracked-files=no"], capture_output=True, text=True,
                             check=False).stdout.splitlines()  # fmt: skip
    changed = [line for line in changed if not line.endswith("dvc.lock")]
    return head + (" + uncommitted changes" if changed else "")


def report_machine() -> str:
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            machine += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:  # torch is a dependency; only a broken install lacks it
        pass
    return machine


def data_hashes(lock: Path) -> dict[str, str]:
    """Each prepared dataset's DVC hash (md5 of its folder listing), read from dvc.lock; empty
    where the data was not prepared by `dvc repro`."""
    if not lock.is_file():
        return {}
    stages = OmegaConf.to_container(OmegaConf.load(lock)).get("stages", {})
    hashes = {}
    for name, stage in stages.items():
        if name.startswith("prepare@"):
            for out in stage.get("outs", []):
                hashes[out["path"]] = out.get("md5", "?")
    return dict(sorted(hashes.items()))


def _version(name: str) -> str:
    if name == "python":
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
