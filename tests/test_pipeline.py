"""End to end: `dvc repro` on the tiny profile in a temporary copy of the repository.

Real DVC, real prepare stages on the data mirror, real training stages, real
MLflow store, real compare stage. Marked slow: run with --runslow (CI does).
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from stage_deps import stages_missing_deps
from test_task_model_pairs import TASK_SPECS, kinds

from conftest import REPO, SHRUNK_EXPERIMENTS

# One run of every model, on every task, still a few minutes on 2 cores.
RUNS = {
    "mnist-cnn": {"task": "mnist", "model": "cnn"},
    "mnist-cnn_lstm": {"task": "mnist", "model": "cnn_lstm"},
    "fashion_mnist-mlp": {"task": "fashion_mnist", "model": "mlp"},
    "mnist1d-cnn": {"task": "mnist1d", "model": "cnn"},
    "mnist1d-gru": {"task": "mnist1d", "model": "gru"},
    "adding-tcn": {"task": "adding", "model": "tcn"},  # a regression target through compare
}


# what the README's `dvc exp show` drops: each stage dependency's hash, and the date
EXP_SHOW_DROP = "^(build|conf|data|src|pipelines|results)|Created"


def _copy_repo(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in listed:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t",
                 "commit", "-qm", "copy"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=dest, check=True)
    return dest


def _dvc(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    dvc = Path(sys.executable).parent / "dvc"
    result = subprocess.run([str(dvc), *args], cwd=project, env=env, capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.mark.slow
def test_dvc_repro_end_to_end_on_the_tiny_profile(tmp_path, mirror):
    project = _copy_repo(tmp_path / "project")
    pipeline = OmegaConf.load(project / "conf/pipeline.yaml")
    pipeline.profile = "tiny"
    pipeline.seeds = 2  # two seeds per stage: the aggregate, the parent run and its children
    pipeline.runs = RUNS
    pipeline.tasks = sorted({run["task"] for run in RUNS.values()})
    OmegaConf.save(pipeline, project / "conf/pipeline.yaml")
    for name, settings in SHRUNK_EXPERIMENTS.items():  # the tiny profile's share of the bench
        path = project / f"conf/experiment/{name}.yaml"
        experiment = OmegaConf.load(path)
        for key, value in settings.items():
            OmegaConf.update(experiment, key, value)
        OmegaConf.save(experiment, path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["CONVREC_DATA_MIRROR"] = str(mirror)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # every stage's process records the files it loaded (tests/stage_imports/sitecustomize.py)
    records = tmp_path / "imports"
    records.mkdir()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests/stage_imports"),
                                         *filter(None, [env.get("PYTHONPATH")])])  # fmt: skip
    env["CONVREC_RECORD_IMPORTS"] = str(records)

    first = _dvc(project, env, "repro")
    expected = {f"prepare@{t}" for t in pipeline.tasks} | {f"train@{r}" for r in RUNS}
    expected |= {f"bench@{e}" for e in pipeline.experiments} | {"compare"}
    expected |= {f"speed@{e}" for e in pipeline.speed} | {"code_prepare", "code_train"}
    assert _stages_run(first.stdout) == expected
    # an edit to any file of the project's code a stage loaded reruns that stage
    assert stages_missing_deps(project, records, REPO) == {}
    for task in pipeline.tasks:  # the pairs test decides by these kinds (tests/task_specs.json)
        meta = json.loads((project / f"data/prepared/{task}/meta.json").read_text())
        assert kinds(meta) == kinds(TASK_SPECS[task]), task

    with open(project / "reports/leaderboard.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    # Published numbers for models the pipeline did not run (adding: Bai et al.'s GRU, LSTM,
    # RNN) are listed beside the runs; every run is there exactly once.
    published = {(r["task"], r["model"]) for r in table if r["status"] == "published"}
    assert published == {("adding", m) for m in ("gru", "lstm", "rnn")}
    rows = {(r["task"], r["model"]): r for r in table if r["status"] != "published"}
    assert set(rows) == {(r["task"], r["model"]) for r in RUNS.values()}
    assert all(r["status"] == "ok" and 0 <= float(r["value"]) <= 100 for r in rows.values())
    assert all(r["seeds"] == "2" and float(r["value_ci95"]) >= 0 for r in rows.values())
    assert (project / "reports/leaderboard.md").read_text().startswith("# Leaderboard")
    assert (project / "reports/figures/accuracy_vs_params.png").stat().st_size > 10_000
    page = (project / "reports/index.html").read_text()
    assert page.count("data:image/png;base64,") == len(list(project.glob("reports/figures/*.png")))
    for experiment in [*pipeline.experiments, *pipeline.speed]:  # each has its section
        path = project / f"results/experiments/{experiment}/summary.json"
        assert json.loads(path.read_text())["conclusion"] in page
    summary = json.loads((project / "results/experiments/parallelism/summary.json").read_text())
    assert any(p.name.startswith("confusion_") for p in project.glob("reports/figures/*.png"))
    for task in pipeline.tasks:  # the report names the data it was made from
        assert f"data/prepared/{task}: " in page and ".dir" in page

    shown = json.loads(_dvc(project, env, "metrics", "show", "--json").stdout)
    (workspace,) = shown.values()  # keyed by revision: only the workspace here
    metrics = workspace["data"]["reports/metrics.json"]["data"]
    # the verdict in a few numbers (no task here has a run of every family: no ranks)
    assert set(metrics) <= {"rank", "wins", "ties", "untested"} and "wins" in metrics
    table = _dvc(project, env, "metrics", "show").stdout.splitlines()
    assert max(len(line) for line in table) <= 120, table
    # dvc exp show: the pipeline's knobs and the verdict, not a column per run; without the
    # stages' dependency hashes (the README's command), nothing else
    header = _dvc(project, env, "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    assert {"profile", "seeds", "ties", "wins.cnn"} <= set(header)
    assert not [c for c in header if c.startswith(("runs.", "mnist.", "adding."))]
    shown = _dvc(project, env, "exp", "show", "--csv", "--drop", EXP_SHOW_DROP).stdout
    assert set(shown.splitlines()[0].split(",")) <= {"Experiment", "rev", "typ", "parent",
                                                     "profile", "seeds", "ties", "untested",
                                                     *(f"{k}.{f}" for k in ("rank", "wins")
                                                       for f in ("cnn", "rnn", "hybrid", "mlp"))}
    plots = json.loads(_dvc(project, env, "plots", "show", "--json").stdout)["data"]
    assert sorted(plots) == sorted(f"reports/curves/{t}.csv" for t in pipeline.tasks)
    for task, (plot,) in plots.items():  # one line per model of the task
        values = plot["content"]["data"]["values"]
        assert {v["model"] for v in values} == {m for t, m in rows if f"/{t}.csv" in task}

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    (comparison,) = client.search_runs([experiments.pop("comparison")])
    benches = client.search_runs([experiments.pop("experiments")])
    assert sorted(r.info.run_name for r in benches) == sorted(pipeline.experiments + pipeline.speed)
    assert summary["mlflow_run_id"] in {r.info.run_id for r in benches}
    assert {r.info.status for r in benches} == {"FINISHED"}
    assert comparison.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(comparison.info.run_id, "report")} >= {
        "report/index.html", "report/leaderboard.md", "report/figures"
    }  # fmt: skip
    every = client.search_runs(list(experiments.values()))
    runs = [r for r in every if "mlflow.parentRunId" not in r.data.tags]  # one per stage
    assert sorted((r.data.tags["task"], r.data.tags["model"]) for r in runs) == sorted(rows)
    assert {r.info.status for r in every} == {"FINISHED"} and len(every) == 3 * len(runs)
    # every training run of the report is grouped under the comparison run
    assert {r.data.tags.get("comparison_run") for r in runs} == {comparison.info.run_id}
    for run in runs:
        seeds = [r for r in every if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        assert sorted(r.data.params["seed"] for r in seeds) == ["0", "1"]
        curve = "val/loss" if run.data.tags["task"] == "adding" else "val/acc"
        assert all(client.get_metric_history(r.info.run_id, curve) for r in seeds)
        row = rows[run.data.tags["task"], run.data.tags["model"]]  # the report's numbers are
        for key in ("params", "latency_ms", "memory_mb"):  # the runs', as MLflow holds them
            assert run.data.metrics[key] == pytest.approx(float(row[key]))

    started = time.perf_counter()
    second = _dvc(project, env, "repro")
    assert _stages_run(second.stdout) == set()
    assert time.perf_counter() - started <= 5.0

    model_cfg = project / "conf/model/cnn.yaml"
    model_cfg.write_text(model_cfg.read_text().replace("head_dropout: 0.3", "head_dropout: 0.25"))
    third = _dvc(project, env, "repro")
    assert _stages_run(third.stdout) == {"train@mnist-cnn", "train@mnist1d-cnn", "speed@overhead",
                                         "compare"}  # fmt: skip


@pytest.mark.slow
def test_dvc_experiments_queue_and_remote(tmp_path, mirror):
    """`dvc exp run -S`, two queued experiments run by `dvc queue start -j 2`: every run in
    the project's one MLflow store; then push to and pull from a DVC remote."""
    project = _copy_repo(tmp_path / "project")
    pipeline = OmegaConf.load(project / "conf/pipeline.yaml")
    # the bench stages read prepared MNIST and Fashion-MNIST, so those are prepared too
    pipeline.profile, pipeline.experiments, pipeline.speed = "tiny", ["gradients"], []
    pipeline.tasks = ["mnist1d", "mnist", "fashion_mnist"]
    pipeline.runs = {"mnist1d-mlp": {"task": "mnist1d", "model": "mlp"}}
    OmegaConf.save(pipeline, project / "conf/pipeline.yaml")
    gradients = OmegaConf.load(project / "conf/experiment/gradients.yaml")
    for key, value in SHRUNK_EXPERIMENTS["gradients"].items():
        OmegaConf.update(gradients, key, value)
    OmegaConf.save(gradients, project / "conf/experiment/gradients.yaml")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "small"],
                   cwd=project, check=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"CONVREC_DATA_MIRROR": str(mirror), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip

    _dvc(project, env, "exp", "run", "-S", "conf/pipeline.yaml:seeds=1")  # in the workspace
    for seeds in (2, 3):
        _dvc(project, env, "exp", "run", "--queue", "-S", f"conf/pipeline.yaml:seeds={seeds}")
    _dvc(project, env, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while re.search(r"\b(Queued|Running)\b", _dvc(project, env, "queue", "status").stdout):
        assert time.monotonic() < deadline, "queued experiments did not finish"
        time.sleep(5)
    status = _dvc(project, env, "queue", "status").stdout
    assert "Failed" not in status, status + _dvc(project, env, "queue", "logs", "-f").stdout

    shown = list(csv.DictReader(_dvc(project, env, "exp", "show", "--csv").stdout.splitlines()))
    done = {row["seeds"]: row["wins.mlp"] for row in shown  # the one family: it wins its task
            if row["seeds"] and row["wins.mlp"]}  # fmt: skip
    assert {"1", "2", "3"} <= set(done)
    # every run went to the project's one store, none to a store inside a queued copy
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mnist1d").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.data.tags["seeds"] for r in parents) == ["0", "0,1", "0,1,2"]
    assert len(runs) == 3 + 6 and {r.info.status for r in runs} == {"FINISHED"}
    assert not list((project / ".dvc").rglob("mlflow.db"))

    # a DVC remote (a local folder here) carries prepared data and results to another clone
    _dvc(project, env, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    _dvc(project, env, "push")
    for folder in (".dvc/cache", "data/prepared", "results"):
        shutil.rmtree(project / folder)
    _dvc(project, env, "pull")
    assert (project / "data/prepared/mnist1d/meta.json").is_file()
    assert json.loads((project / "results/mnist1d/mlp/metrics.json").read_text())["seeds"] == 1


@pytest.mark.slow
def test_the_full_profile_composes_through_dvc(tmp_path):
    """profile=full in conf/pipeline.yaml (what `dvc exp run -S conf/pipeline.yaml:profile=full`
    sets), then `dvc repro --dry`: every training stage with profile=full on its command line.
    A dry run still wants each stage's deps, so empty prepared folders stand in for them."""
    project = _copy_repo(tmp_path / "project")
    pipeline = OmegaConf.load(project / "conf/pipeline.yaml")
    pipeline.profile = "full"
    OmegaConf.save(pipeline, project / "conf/pipeline.yaml")
    for folder in [f"data/prepared/{task}" for task in pipeline.tasks] + ["results", "build"]:
        (project / folder).mkdir(parents=True)
    for stamp in ("code_prepare", "code_train"):  # and the code stamps (pipelines/stamp.py)
        (project / "build" / f"{stamp}.txt").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    dry = _dvc(project, env, "repro", "--dry")
    commands = re.findall(r"python pipelines/train\.py [^\n]+", dry.stdout)
    assert len(commands) == len(pipeline.runs) and all("profile=full" in c for c in commands)
