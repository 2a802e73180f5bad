"""What each task's protocol costs on this machine, before a whole `dvc repro` pays for it.

For every run of conf/pipeline.yaml (or those named), trains one epoch (a few where an epoch is
shorter than 8 steps) through the lab's
training path (convrec.training.train, a scratch MLflow store and results folder), reads the
epoch's training seconds and the validation pass's, and predicts the fit seconds of one seed
under the task's protocol (epochs x that epoch); the last lines give each task's total and the
whole pipeline's for `--seeds` seeds. Prepared data must exist (`uv run dvc repro prepare`).

    uv run python scripts/protocol_costs.py [--seeds 3] [--profile quick] [task-model ...]

A prediction, not a measurement of the repro: it leaves out start-up, the test pass and the
schedule's effect on later epochs; measure the repro itself before claiming its time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="stage names (task-model); default: all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--out", type=Path, help="write the table here as JSON")
    parser.add_argument("--prepared", type=Path, default=ROOT / "data" / "prepared")
    args = parser.parse_args()

    from convrec.compose import compose_config
    from convrec.data.contract import load_meta
    from convrec.protocol import examples
    from convrec.training import train

    pipeline = OmegaConf.load(ROOT / "conf" / "pipeline.yaml")
    runs = {name: run for name, run in pipeline.runs.items() if not args.runs or name in args.runs}
    rows, totals = [], {}
    scratch = Path(tempfile.mkdtemp(prefix="convrec-costs-"))
    for number, (name, run) in enumerate(runs.items(), start=1):
        overrides = [f"task={run.task}", f"model={run.model}", f"profile={args.profile}",
                     f"paths.prepared={args.prepared.resolve()}",
                     f"paths.results={scratch / 'results'}",
                     f"tracking.uri=sqlite:///{scratch / 'mlflow.db'}",
                     "tracking.system_metrics_interval=null"]  # fmt: skip
        cfg = compose_config(ROOT / "conf", "train", overrides)
        epochs = int(cfg.trainer.max_epochs)
        # enough epochs for 8 steps: the one-cycle schedule needs a few (UCR epochs are 3-5)
        train_examples = examples(cfg, load_meta(args.prepared / run.task))["train"]
        steps = -(-train_examples // int(cfg.task.batch_size))
        probe = min(epochs, -(-8 // steps))
        cfg.trainer.max_epochs = probe
        started = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - started
        metrics = json.loads((scratch / "results" / run.task / run.model / "metrics.json")
                             .read_text())  # fmt: skip
        epoch = float(metrics["train_seconds"]) / probe  # an epoch and its validation pass
        row = {"run": name, "epochs": epochs, "epoch_seconds": round(epoch, 2),
               "seed_seconds": round(epoch * epochs, 1),
               "one_epoch_wall": round(wall, 1)}  # fmt: skip
        rows.append(row)
        totals[run.task] = totals.get(run.task, 0.0) + row["seed_seconds"]
        print(f"[{number}/{len(runs)}] {name}: {epoch:.2f} s an epoch x {epochs} = "
              f"{row['seed_seconds']:.0f} s a seed", flush=True)
    print("\nper task, one seed (s):")
    for task, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {task:20s} {seconds:8.0f}")
    total = sum(totals.values())
    print(f"fit, one seed: {total:.0f} s ({total / 60:.1f} min); {args.seeds} seeds: "
          f"{args.seeds * total / 60:.1f} min")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "tasks": totals, "seeds": args.seeds,
                                        "profile": args.profile}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
