"""Your own data through real DVC: a `.ts` pair of series, a TSV and a CSV of texts and a
folder of images, each one YAML file in conf/task/ and an entry under `sources` in
conf/pipeline.yaml, prepared, trained (tiny profile) and compared by `dvc repro`: the texts and
images on runs listed one by one, the series on its input kind's model set (`train_sets`); an
edited source file makes its task's stages run again, a malformed one stops its stage with one
line and exit 2. Marked slow: run with --runslow (CI does)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from test_pipeline import _copy_repo, _dvc, _stages_run


def _ts(path, n: int, seed: int) -> None:
    """A univariate UCR-style .ts file: class a rises, class b falls."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName signals", "@timeStamps false", "@missing false", "@univariate true",
             "@equalLength true", "@seriesLength 24", "@classLabel true a b", "@data"]  # fmt: skip
    for i in range(n):
        label = "ab"[i % 2]
        values = np.linspace(-1, 1, 24) * (1 if label == "a" else -1)
        values = values + 0.1 * rng.standard_normal(24)
        lines.append(",".join(f"{v:.4f}" for v in values) + f":{label}")
    path.write_text("\n".join(lines) + "\n")


REVIEWS = {"pos": ["great film", "loved it", "wonderful acting"],
           "neg": ["dull film", "hated it", "terrible acting"]}  # fmt: skip
# the CSV's texts: quoted where one holds a comma
COMMENTS = {"up": ['"good, really"', "liked it", "well made"],
            "down": ['"bad, really"', "disliked it", "badly made"]}  # fmt: skip


def _texts(path, words: dict[str, list[str]], n: int, sep: str) -> None:
    """A table of n texts, the classes alternating, each class with words of its own."""
    labels = list(words) * (n // 2)
    rows = [f"text{sep}label"] + [f"{words[label][i % 3]}{sep}{label}"
                                  for i, label in enumerate(labels)]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")


def _photos(folder, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for label, level in (("bright", 200), ("dark", 40)):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(level + rng.normal(0, 20, (14, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{i}.png")


TASKS = {
    "signals": """\
        defaults: [/source/timeseries@_here_, _self_]
        name: signals
        source: {train: data/user/signals/train.ts, test: data/user/signals/test.ts}
        batch_size: 8
        """,
    "reviews": """\
        defaults: [/source/text_table@_here_, _self_]
        name: reviews
        source: {train: data/user/reviews/reviews.tsv}
        batch_size: 8
        """,
    "comments": """\
        defaults: [/source/text_table@_here_, _self_]
        name: comments
        source: {train: data/user/comments/comments.csv}
        batch_size: 8
        """,
    "photos": """\
        defaults: [/source/image_folder@_here_, _self_]
        name: photos
        source: {train: data/user/photos, image_size: [12, 12]}
        batch_size: 8
        """,
}
# listed runs, each with its conf/task_model file; the series task trains its kind's model set
# instead (cut to two models here, for time)
RUNS = {"reviews-textcnn": ("reviews", "textcnn"), "comments-textcnn": ("comments", "textcnn"),
        "photos-cnn": ("photos", "cnn")}  # fmt: skip
SERIES_SET = ["fcn", "gru"]


@pytest.mark.slow
def test_your_own_series_texts_and_images_run_through_dvc_repro(tmp_path):
    project = _copy_repo(tmp_path / "project")
    user = project / "data" / "user"
    (user / "signals").mkdir(parents=True)
    _ts(user / "signals" / "train.ts", 64, seed=0)
    _ts(user / "signals" / "test.ts", 16, seed=1)
    (user / "reviews").mkdir()
    _texts(user / "reviews" / "reviews.tsv", REVIEWS, 80, "\t")
    (user / "comments").mkdir()
    _texts(user / "comments" / "comments.csv", COMMENTS, 80, ",")
    _photos(user / "photos", per_class=40)
    for name, body in TASKS.items():  # one YAML file each, no Python
        (project / "conf" / "task" / f"{name}.yaml").write_text(textwrap.dedent(body))
    for task, model in RUNS.values():  # the run's own settings: none (the model's defaults)
        (project / "conf" / "task_model" / f"{task}_{model}.yaml").write_text(
            "# @package _global_\n")
    pipeline = OmegaConf.load(project / "conf/pipeline.yaml")
    pipeline.profile, pipeline.seeds = "tiny", 1
    pipeline.tasks, pipeline.experiments, pipeline.speed = [], [], []
    pipeline.sources = {name: f"data/user/{name}" for name in TASKS}
    pipeline.runs = {stage: {"task": task, "model": model} for stage, (task, model) in RUNS.items()}
    pipeline.train_sets.series = ["signals"]
    pipeline.model_sets.series = SERIES_SET
    OmegaConf.save(pipeline, project / "conf/pipeline.yaml")
    trained = [*RUNS.values(), *(("signals", model) for model in SERIES_SET)]

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the stages' python
    first = _dvc(project, env, "repro")
    ran = _stages_run(first.stdout)
    assert {f"prepare_source@{name}" for name in TASKS} <= ran
    assert {f"train@{stage}" for stage in RUNS} <= ran and "compare" in ran
    assert {f"train_series@signals-{model}" for model in SERIES_SET} <= ran
    with open(project / "reports/leaderboard.csv") as handle:
        rows = {(r["task"], r["model"]): r for r in csv.DictReader(handle)}
    for task, model in trained:
        assert rows[(task, model)]["status"] == "ok", rows[(task, model)]
        assert 0 <= float(rows[(task, model)]["value"]) <= 100

    # an edited source file: its task's stages run again, the others stay up to date
    with open(user / "reviews" / "reviews.tsv", "a") as handle:
        handle.write("a great great film\tpos\n")
    again = _stages_run(_dvc(project, env, "repro").stdout)
    assert {"prepare_source@reviews", "train@reviews-textcnn", "compare"} <= again
    assert not any(stage.endswith(("signals", "photos", "comments", "signals-fcn",
                                   "signals-gru", "photos-cnn", "comments-textcnn"))
                   for stage in again)  # fmt: skip

    # a malformed edit: the stage ends with one line and exit 2, and leaves nothing half-written
    # (DVC itself removes a stage's outputs before it runs; its cache keeps them)
    with open(user / "comments" / "comments.csv", "a") as handle:
        handle.write("a text without its label,\n")
    bad = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro"], cwd=project,
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    errors = [line for line in bad.stderr.splitlines() if line.startswith("convrec: error:")]
    assert bad.returncode != 0 and "exited with 2" in bad.stderr, bad.stderr[-2000:]
    assert len(errors) == 1 and "comments.csv" in errors[0], bad.stderr[-2000:]
    assert "line 82: the label is missing" in errors[0]
    assert {p.name for p in (project / "data/prepared").iterdir()} <= set(TASKS)
