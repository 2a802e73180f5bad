"""The GPU check's steps (scripts/gpu_check.sh runs this; `python scripts/gpu_check.py OUT`).

Each step runs the lab's own entry points as DVC would (a fresh process each), with a time
limit, and the whole check stays within about 4 minutes on one GPU:
1. prepare mnist, adding and seq_mnist (the full profile's) from the carried MNIST files;
2. the overhead bench on the GPU (convrec's fit against a plain PyTorch loop, bf16);
3. LSTM training throughput: the lab's LSTM model against a bare nn.LSTM loop (cuDNN both);
4. a full-profile seq_mnist TCN run, capped in time, and its time to 99% validation accuracy;
5. one training run through trainer=ddp on the GPUs present.
Everything measured goes to OUT/gpu_check.json, beside steps.log (every step's output),
overhead_summary.json, overhead.csv and seq_mnist_tcn_history.csv; runs and results are made
in a scratch folder outside OUT.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRY = os.environ.get("CONVREC_GPU_CHECK_CPU") == "1"  # no GPU: the script's own smoke test
SHRINK = ["++trainer.limit_train_batches=8", "++trainer.limit_val_batches=2",
          "++trainer.limit_test_batches=2"]  # fmt: skip


def run(out: Path, name: str, args: list[str], timeout: int) -> dict:
    """One entry point in a fresh process; its exit status, seconds and last output lines.
    Its output is appended to OUT/steps.log (the device tool brings back 8 files at most)."""
    print(f"== {name}: {' '.join(args)}", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, timeout=timeout, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        status, output = done.returncode, done.stdout
    except subprocess.TimeoutExpired as err:
        status, output = "timeout", (err.stdout or b"").decode(errors="replace")
    with (out / "steps.log").open("a") as log:
        log.write(f"===== {name}: {' '.join(args)}\n{output}\n")
    seconds = round(time.perf_counter() - started, 2)
    print(f"   {name}: status {status}, {seconds} s", flush=True)
    return {"status": status, "seconds": seconds, "tail": output.splitlines()[-3:]}


def lstm_throughput(device, steps: int = 200, batch: int = 128) -> dict:
    """Training samples per second on MNIST-shaped rows (28 steps of 28 features), bf16
    autocast on a GPU: the lab's LSTM model (its head, init and input handling) against a
    bare nn.LSTM + Linear, both with fused AdamW."""
    import torch
    from torch import nn

    from convrec.models import build_model
    from convrec.models.spec import IOSpec

    spec = IOSpec("image", (1, 28, 28), 10)
    lab = build_model("lstm", spec, hidden_size=128).to(device)

    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)

        def forward(self, x):
            return self.head(self.lstm(x.squeeze(1))[0][:, -1])

    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(10, (batch,), device=device)
    result = {}
    for name, net in (("convrec_lstm", lab), ("bare_nn_lstm", Bare().to(device))):
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)

        def step(net=net, optimizer=optimizer) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = nn.functional.cross_entropy(net(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        for _ in range(10):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        result[f"{name}_samples_per_second"] = round(steps * batch / (time.perf_counter() -
                                                                      started), 1)  # fmt: skip
    result["ratio"] = round(result["convrec_lstm_samples_per_second"] /
                            result["bare_nn_lstm_samples_per_second"], 3)  # fmt: skip
    return result


def time_to_accuracy(history: Path, target: float) -> dict:
    """Cumulative training seconds (validation excluded) until val/acc first reaches target."""
    rows = list(csv.DictReader(history.open()))
    elapsed = 0.0
    for row in rows:
        elapsed += float(row["train_seconds"])
        if row.get("val/acc") and float(row["val/acc"]) >= target:
            return {"epochs": int(row["epoch"]), "train_seconds": round(elapsed, 2),
                    "reached": True, "best_val_acc": max(float(r["val/acc"]) for r in rows)}
    best = max((float(r["val/acc"]) for r in rows if r.get("val/acc")), default=None)
    return {"epochs": len(rows), "train_seconds": round(elapsed, 2), "reached": False,
            "best_val_acc": best}  # fmt: skip


def main(out: Path) -> int:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    (out / "steps.log").unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="convrec-gpu-check-"))
    gpu = torch.cuda.is_available()
    report = {"torch": torch.__version__, "cuda": gpu, "dry_run_on_cpu": DRY}
    if not gpu and not DRY:
        print("gpu_check: no GPU here; this check is for a lent GPU machine "
              "(CONVREC_GPU_CHECK_CPU=1 runs it on the CPU, cut to seconds)", file=sys.stderr)
        return 2
    device = torch.device("cuda" if gpu else "cpu")
    if gpu:
        report |= {"gpu": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(),
                   "bf16": torch.cuda.is_bf16_supported()}  # fmt: skip
    profile = "quick" if DRY else "full"
    steps = report["steps"] = {}
    for task, task_profile in (("mnist", "quick"), ("adding", "quick"), ("seq_mnist", profile)):
        steps[f"prepare_{task}"] = run(out, f"prepare_{task}", ["pipelines/prepare.py",
                                       f"task={task}", f"profile={task_profile}"], 120)  # fmt: skip

    bench = ["pipelines/bench.py", "experiment=overhead", f"device={device.type}",
             f"paths.results={work}/experiments"]  # fmt: skip
    if DRY:
        quoted = ",".join(f"'{override}'" for override in SHRINK)
        bench += ["experiment.repeats=1", f"experiment.overrides=[{quoted}]"]
    steps["overhead"] = run(out, "overhead", bench, 200)
    summary = work / "experiments/overhead/summary.json"
    if summary.is_file():
        report["overhead"] = json.loads(summary.read_text())["models"]
        shutil.copy(summary, out / "overhead_summary.json")
        shutil.copy(summary.with_name("overhead.csv"), out / "overhead.csv")

    report["lstm_throughput"] = lstm_throughput(device, steps=20 if DRY else 200)
    print(f"   lstm throughput: {report['lstm_throughput']}", flush=True)

    tcn = ["pipelines/train.py", "task=seq_mnist", "model=tcn", f"profile={profile}",
           f"paths.results={work}/runs", "+trainer.max_time='00:00:01:30'"]  # fmt: skip
    steps["seq_mnist_tcn"] = run(out, "seq_mnist_tcn", tcn + (SHRINK if DRY else []), 150)
    history = work / "runs/seq_mnist/tcn/history.csv"
    if history.is_file():
        report["seq_mnist_tcn_to_99"] = time_to_accuracy(history, 0.99)
        (out / "seq_mnist_tcn_history.csv").write_text(history.read_text())

    ddp = ["pipelines/train.py", "task=mnist", "model=cnn", "profile=tiny",
           f"trainer={'ddp' if gpu else 'ddp_cpu'}", f"paths.results={work}/runs"]
    steps["ddp"] = run(out, "ddp", ddp, 120)
    metrics = work / "runs/mnist/cnn/metrics.json"
    if metrics.is_file():
        ran = json.loads(metrics.read_text())
        report["ddp"] = {k: ran[k] for k in ("device", "precision", "world_size", "value")}

    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    failed = [name for name, step in steps.items() if step["status"] != 0]
    if failed:
        print(f"gpu_check: steps failed: {', '.join(failed)} (their logs are in {out})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_check")))
