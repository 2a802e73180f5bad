"""The stage entry points refuse bad names in one line, before anything loads."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CONF, REPO, run_stage
from convrec.cli import check_choices
from convrec.errors import ConvrecError


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("train.py", ["model=resnet9000"], "unknown model 'resnet9000'; known: bilstm, cnn"),
        ("train.py", ["task=cifar100"], "unknown task 'cifar100'; known: adding, arrowhead"),
        ("train.py", ["-m", "model=cnn,nope"], "unknown model 'nope'"),
        ("prepare.py", ["task=nope"], "unknown task 'nope'"),
        ("train.py", ["trainer.max_epochs=-1"], "trainer.max_epochs=-1 is invalid: it must be"),
    ],
)
def test_bad_input_ends_with_one_error_line_and_nothing_written(script, args, message, tmp_path):
    result = run_stage(script, *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_choice_check_accepts_known_names_and_sweeps():
    check_choices(["task=mnist", "model=cnn,lstm", "trainer.max_epochs=2"], CONF, ["task", "model"])
    with pytest.raises(ConvrecError):
        check_choices(["trainer=tpu"], CONF, ["trainer"])


def test_checksum_mismatch_ends_with_one_error_line_and_no_output(tmp_path, mirror):
    shutil.copytree(mirror / "FashionMNIST", tmp_path / "mirror" / "FashionMNIST")
    victim = tmp_path / "mirror/FashionMNIST/raw/t10k-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:-10])  # truncated download
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "CONVREC_DATA_MIRROR": str(tmp_path / "mirror")}
    result = run_stage("prepare.py", "task=fashion_mnist", cwd=project, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "checksum mismatch" in lines[-1] and "t10k-images-idx3-ubyte.gz" in lines[-1]
    prepared = project / "data" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir())


def test_a_queued_dvc_experiment_writes_in_its_copy_and_tracks_to_the_project_store(
    tmp_path, monkeypatch
):
    from convrec.paths import project_root, store_root
    from convrec.tracking.mlflow_run import tracking_uri

    copy = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc"
    (copy / "src").mkdir(parents=True)
    (copy / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "repo" / "dvc.yaml").write_text("stages: {}\n")
    assert project_root(copy / "src") == copy.resolve()  # outputs stay in the copy
    assert store_root(copy) == (tmp_path / "repo").resolve()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(None, copy) == f"sqlite:///{(tmp_path / 'repo' / 'mlflow.db').resolve()}"


def test_protocol_costs_predicts_a_run_s_seed_from_one_measured_epoch(tmp_path, prepared_root):
    out = tmp_path / "costs.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "protocol_costs.py"), "mnist1d-mlp",
         "--profile", "tiny", "--seeds", "3", "--prepared", str(prepared_root), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    costs = json.loads(out.read_text())
    (row,) = costs["rows"]
    assert row["run"] == "mnist1d-mlp" and row["epochs"] == 1 and row["epoch_seconds"] > 0
    assert costs["tasks"] == {"mnist1d": row["seed_seconds"]}
    assert "3 seeds:" in done.stdout
