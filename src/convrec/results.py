"""The results contract: what results/<task>/<model>/metrics.json holds, defined once.

Training writes it (one run: `RUN_KEYS`; several seeds: an aggregate with `AGGREGATE_KEYS`
besides the per-seed files) and compare reads it through `read_metrics`, so that renaming a
key breaks a test instead of a report.

The aggregate keeps the run keys compare shows (`value`, `train_seconds`, ... as means over
the seeds that finished) and adds the spread: `value_std` (sample standard deviation) and
`value_ci95` (the half-width of the 95% t-interval of the mean), `seeds` and `diverged` (how
many of them diverged). With one finished seed the spread is unknown (None).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

from scipy import stats

from convrec.errors import ConvrecError

SEEDS_DIR = "seeds"  # results/<task>/<model>/seeds/<seed>/: each seed's own files

# key: the types it may hold (None: the value may be missing, written as null)
RUN_KEYS: dict[str, tuple] = {
    "task": (str,), "model": (str,), "family": (str,), "metric": (str,), "metric_key": (str,),
    "value": (Real,), "higher_is_better": (bool,), "params": (int,),
    "train_seconds": (Real,), "samples_per_second": (Real,), "epochs": (int,),
    "best_val": (Real, type(None)), "test": (dict,), "profile": (str,), "seed": (int,),
    "device": (str,), "precision": (str,), "world_size": (int,), "mlflow_run_id": (str,),
    "baseline": (dict, type(None)), "protocol": (dict,), "test_samples": (int,),
    "latency_ms": (Real,), "latency_iqr_ms": (Real,), "memory_mb": (Real, type(None)),
}  # fmt: skip
# What the aggregate of several seeds adds; `value` is then the mean (None: every seed diverged).
AGGREGATE_KEYS: dict[str, tuple] = {
    "seeds": (int,), "diverged": (int,), "runs": (list,),
    "value_mean": (Real, type(None)), "value_std": (Real, type(None)),
    "value_ci95": (Real, type(None)), "values": (list,), "spread": (dict,),
}  # fmt: skip
# The costs averaged over the finished seeds in the aggregate, each with its spread; `value`
# is averaged too (with value_std, value_ci95); the other run keys are the first seed's.
AVERAGED = ("train_seconds", "samples_per_second", "latency_ms", "latency_iqr_ms", "memory_mb",
            "best_val")  # fmt: skip


def check(metrics: Mapping, keys: Mapping[str, tuple], where: str) -> dict:
    """`metrics` with every key of `keys`, each of an allowed type; else one clear error."""
    for key, types in keys.items():
        if key not in metrics:
            raise ConvrecError(f"{where}: metrics.json has no {key!r}; train the run again")
        value = metrics[key]
        # a bool is an int to isinstance: only where the contract says bool
        if not isinstance(value, types) or isinstance(value, bool) != (bool in types):
            allowed = " or ".join(t.__name__ for t in types)
            raise ConvrecError(f"{where}: metrics.json {key!r} is {value!r}, not {allowed}; "
                               "train the run again")  # fmt: skip
    return dict(metrics)


def read_run(path: Path) -> dict:
    """One run's metrics.json (one seed), checked against the contract."""
    return check(json.loads(Path(path).read_text()), RUN_KEYS, str(path))


def read_metrics(path: Path) -> dict:
    """What compare reads: a single run's metrics.json or a multi-seed aggregate."""
    metrics = json.loads(Path(path).read_text())
    if "seeds" not in metrics:
        return check(metrics, RUN_KEYS, str(path))
    # every seed diverged (no value): the aggregate holds no run keys
    keys = AGGREGATE_KEYS if metrics.get("value") is None else RUN_KEYS | AGGREGATE_KEYS
    return check(metrics, keys, str(path))


def mean_std_ci95(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """Mean, sample standard deviation and the 95% t-interval's half-width; the spread is
    None for fewer than two values (a zero spread stays 0.0)."""
    if not values:
        return None, None, None
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, None
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)


def aggregate(runs: Sequence[Mapping], mlflow_run_id: str) -> dict:
    """The aggregate metrics.json of several seeds: `runs` holds each seed's metrics, or
    {"seed", "status": "diverged"} for one that diverged."""
    finished = [r for r in runs if r.get("status") != "diverged"]
    summary: dict = {}
    if finished:
        summary = {key: value for key, value in finished[0].items() if key in RUN_KEYS}
    spread = {}
    for key in AVERAGED if finished else ():
        mean, std, ci95 = mean_std_ci95([r[key] for r in finished if r.get(key) is not None])
        summary[key] = _round(mean) if mean is not None else None
        spread[key] = {"std": _round(std) if std is not None else None,
                       "ci95": _round(ci95) if ci95 is not None else None}  # fmt: skip
    values = [float(r["value"]) for r in finished]
    mean, std, ci95 = mean_std_ci95(values)
    summary |= {
        "value": _round(mean) if mean is not None else None,
        "value_mean": _round(mean) if mean is not None else None,
        "value_std": _round(std) if std is not None else None,
        "value_ci95": _round(ci95) if ci95 is not None else None,
        "values": values,
        "spread": spread,  # std and ci95 of each cost over the seeds
        "seeds": len(runs),
        "diverged": len(runs) - len(finished),
        "runs": [{"seed": r["seed"], "status": r.get("status", "finished"),
                  "value": r.get("value"), "mlflow_run_id": r.get("mlflow_run_id")}
                 for r in runs],  # fmt: skip
        "mlflow_run_id": mlflow_run_id,
    }
    return summary


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def seed_folders(folder: Path) -> list[Path]:
    """The per-seed result folders of a (task, model) results folder, in seed order."""
    seeds = Path(folder) / SEEDS_DIR
    if not seeds.is_dir():
        return []
    return sorted((p for p in seeds.iterdir() if p.is_dir()), key=lambda p: int(p.name))


def run_file(folder: Path, name: str) -> Path | None:
    """A run's file (history.csv, confusion.csv): the single run's, else the first seed's
    that has one."""
    for candidate in [Path(folder), *seed_folders(folder)]:
        if (candidate / name).is_file():
            return candidate / name
    return None
