"""Bad input is refused with one line and exit 2 before an MLflow run opens: a model
hyperparameter out of its range, a truncated meta.json, a prepared file whose checksum does not
match, and one that holds more than tensors even though its checksum matches."""

import datetime
import json
import shutil

import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import compose_config, run_stage
from convrec.data.checksums import digest
from convrec.errors import ConvrecError
from convrec.training import train


def _no_run(uri: str) -> bool:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mnist1d")
    return experiment is None or not client.search_runs([experiment.experiment_id])


@pytest.fixture
def copy(tmp_path, prepared_root):
    """A private copy of prepared MNIST-1D to spoil."""
    shutil.copytree(prepared_root / "mnist1d", tmp_path / "prepared/mnist1d")
    return tmp_path / "prepared"


def _cfg(tmp_path, prepared, *overrides):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return compose_config("train", [
        "task=mnist1d", "model=mlp", "profile=tiny", f"paths.prepared={prepared}",
        f"paths.results={tmp_path / 'results'}", f"tracking.uri={uri}", *overrides,
    ]), uri  # fmt: skip


def _spoil_meta(prepared):
    path = prepared / "mnist1d/meta.json"
    path.write_text(path.read_text()[:40])


def _spoil_checksum(prepared):
    path = prepared / "mnist1d/train.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))


def _not_plain_tensors(prepared):
    """A pickled object beside the tensors, its checksum written into meta.json as prepare
    would: the checksum passes, torch.load(weights_only=True) refuses it."""
    path = prepared / "mnist1d/train.pt"
    tensors = torch.load(path, weights_only=True)
    torch.save({**tensors, "when": datetime.date(2026, 1, 1)}, path)
    meta_path = prepared / "mnist1d/meta.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["train.pt"] = digest(path)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("spoil, says", [
    (_spoil_meta, "meta.json is not valid JSON"),
    (_spoil_checksum, "does not match the checksum in meta.json"),
    (_not_plain_tensors, "is not a file of plain tensors"),
])  # fmt: skip
def test_spoiled_prepared_data_is_refused_before_a_run_opens(tmp_path, copy, spoil, says):
    spoil(copy)
    cfg, uri = _cfg(tmp_path, copy)
    with pytest.raises(ConvrecError, match=says) as refused:
        train(cfg)
    assert "prepare the task again" in str(refused.value)
    assert _no_run(uri) and not (tmp_path / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("override, says", [
    ("model.net.dropout=1.5", "model.net.dropout=1.5 is invalid: it must be a number in [0, 1)"),
    ("model.net.hidden=[0]", "model.net.hidden=[0] is invalid: it must be an integer >= 1"),
])  # fmt: skip
def test_a_model_hyperparameter_out_of_range_is_one_line_and_exit_2(
    tmp_path, prepared_root, override, says
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_stage("train.py", "task=mnist1d", "model=mlp", "profile=tiny", override,
                     f"paths.prepared={prepared_root}", f"paths.results={tmp_path / 'results'}",
                     f"tracking.uri={uri}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("convrec: error: ") and says in line
    assert _no_run(uri)
