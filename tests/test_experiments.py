"""Measurement experiments: the parallelism bench, its conclusion, its MLflow run, and its
section in the report."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import REPO, compose_config, run_stage, shrunk_overrides
from convrec.bench import MLFLOW_EXPERIMENT, run_experiment
from convrec.compare.report import write_reports
from convrec.experiments import gradients
from convrec.experiments.parallelism import (
    beside_references,
    conclusion,
    match_params,
    sequence_spec,
)
from convrec.models import build_model, count_parameters


def test_convolutional_models_are_scaled_to_the_reference_parameter_count():
    spec = sequence_spec(8, 256, 10)
    lstm = count_parameters(build_model("lstm", spec, hidden_size=128))
    net = OmegaConf.to_container(OmegaConf.load(REPO / "conf/model/fcn.yaml").net)
    matched = match_params("fcn", spec, net, "channels", lstm)
    assert abs(count_parameters(build_model("fcn", spec, **matched)) - lstm) / lstm < 0.02
    assert len(matched["channels"]) == len(net["channels"])  # same depth, narrower


def test_scan_models_are_scaled_to_the_reference_by_their_one_width():
    spec = sequence_spec(8, 256, 10)
    lstm = count_parameters(build_model("lstm", spec, hidden_size=128))
    matched = match_params("mingru", spec, {"width": 64, "num_layers": 2}, "width", lstm)
    assert abs(count_parameters(build_model("mingru", spec, **matched)) - lstm) / lstm < 0.02
    assert matched["num_layers"] == 2 and isinstance(matched["width"], int)


def test_the_conclusion_states_the_scan_models_cost_against_the_step_by_step_rnn():
    nan = float("nan")
    table = pd.DataFrame([
        {"model": m, "family": f, "T": 2048, "train_step_ms": train, "latency_ms": latency,
         "latency_sequential_ms": sequential}
        for m, f, train, latency, sequential in [("gru", "rnn", 40.0, 8.0, nan),
                                                 ("tcn", "cnn", 4.0, 2.0, nan),
                                                 ("mingru", "scan", 5.0, 1.0, 30.0)]
    ])  # fmt: skip
    sentence, ratios = conclusion(table, "tcn", "CPU", recurrent="gru")
    assert ratios["mingru_over_gru_train"] == 0.125
    assert ratios["mingru_sequential_over_parallel_latency"] == 30.0
    assert "costs mingru 0.12x a gru step" in sentence and "mingru 30.0x their parallel" in sentence


def test_a_published_speed_up_gets_a_delta_only_under_its_own_protocol():
    table = pd.DataFrame([{"model": "gru", "T": 512, "train_step_ms": 60.0},
                          {"model": "mingru", "T": 512, "train_step_ms": 4.0}])  # fmt: skip
    refs = OmegaConf.create([{"slow": "gru", "fast": "mingru", "T": 512, "value": 175,
                              "protocol": {"device": "cuda", "batch_size": 64},
                              "source": "Feng et al. 2024"}])  # fmt: skip
    on_cpu = beside_references(table, refs, torch.device("cpu"), 16)
    assert "published 175x (Feng et al. 2024); here 15.0x; different protocol" in on_cpu
    assert "delta" not in on_cpu.replace("no delta", "")
    assert "delta -160.0x" in beside_references(table, refs, torch.device("cuda"), 64)
    assert "not measured (no T=512 here)" in beside_references(table[:0], refs,
                                                                torch.device("cpu"), 16)


def test_the_conclusion_states_each_cost_ratio_at_the_longest_sequence():
    table = pd.DataFrame([
        {"model": "rnn", "T": 64, "train_step_ms": 1.0, "latency_ms": 1.0},
        {"model": "tcn", "T": 64, "train_step_ms": 1.0, "latency_ms": 1.0},
        {"model": "rnn", "T": 2048, "train_step_ms": 30.0, "latency_ms": 8.0},
        {"model": "tcn", "T": 2048, "train_step_ms": 3.0, "latency_ms": 2.0},
    ])  # fmt: skip
    sentence, ratios = conclusion(table, "tcn", "CPU (2 threads)")
    assert ratios == {"rnn_over_tcn_train": 10.0, "rnn_over_tcn_latency": 4.0}
    assert sentence == ("At T=2048 on CPU (2 threads), against the tcn at matched size, a "
                        "training step costs rnn 10.0x; inference latency (one sequence) "
                        "rnn 4.0x.")  # fmt: skip


def _run_small(tmp_path, results, overrides):
    """Run a shrunk experiment into `results`, tracked in a SQLite store under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    paths = [f"paths.results={results}", f"tracking.uri={uri}"]
    return uri, run_experiment(compose_config("bench", [*overrides, *paths]), REPO)


def test_an_experiment_run_leaves_its_summary_and_a_finished_mlflow_run(tmp_path):
    shrunk = [*shrunk_overrides("parallelism"), "device=cpu"]
    uri, summary = _run_small(tmp_path, tmp_path / "experiments", shrunk)
    out = tmp_path / "experiments" / "parallelism"
    assert json.loads((out / "summary.json").read_text()) == summary
    table = pd.read_csv(out / "parallelism.csv")
    assert set(table.model) == {"rnn", "lstm", "gru", "tcn", "fcn", "mingru", "minlstm", "s4d"}
    assert set(table["T"]) == {16, 32}
    assert (table.train_step_ms > 0).all() and (table.latency_ms > 0).all()
    scan = table.family == "scan"  # the scan models' latency one step at a time, too
    assert (table[scan].latency_sequential_ms > 0).all()
    assert table[~scan].latency_sequential_ms.isna().all()
    assert 0 < summary["metrics"]["mingru_over_gru_train"]
    assert (out / "parallelism.png").stat().st_size > 10_000
    run = MlflowClient(uri).get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["conclusion"] == summary["conclusion"]
    assert run.data.metrics["rnn_over_tcn_train"] == pytest.approx(
        summary["metrics"]["rnn_over_tcn_train"]
    )
    experiment = MlflowClient(uri).get_experiment(run.info.experiment_id)
    assert experiment.name == MLFLOW_EXPERIMENT

    # the report gives the experiment a section: its conclusion and its figure, inlined
    reports = write_reports(tmp_path, [], tmp_path / "reports", experiments=["parallelism", "x"])
    page = (reports / "index.html").read_text()
    assert summary["conclusion"] in page and summary["mlflow_run_id"] in page
    assert "<h3>x</h3><p class=\"missing\">missing" in page


def test_an_unknown_experiment_is_refused_in_one_line_before_any_work():
    result = run_stage("bench.py", "experiment=nope")
    assert result.returncode != 0
    assert ("unknown experiment 'nope'; known: activations, gradients, overhead, parallelism, "
            "parameter_economy, pooling.") in result.stderr


def test_adding_batches_mark_one_early_and_one_late_step_and_sum_their_values():
    x, y = gradients.adding_batch(64, 50, torch.Generator().manual_seed(0))
    values, markers = x[:, 0], x[:, 1]
    assert (markers.sum(dim=1) == 2).all()
    assert (markers[:, :5].sum(dim=1) == 1).all() and (markers[:, 25:].sum(dim=1) == 1).all()
    assert torch.allclose(y, (values * markers).sum(dim=1))


def test_the_gradient_reaching_a_step_is_zero_where_the_model_cannot_see_it():
    class LastStep(torch.nn.Module):  # reads only the last step's value
        def forward(self, x):
            return x[:, 0, -1]

    x, y = gradients.adding_batch(8, 10, torch.Generator().manual_seed(0))
    norms = gradients.gradient_by_step(LastStep(), x, y)
    assert norms.shape == (10,) and (norms[:-1] == 0).all() and norms[-1] > 0


def test_the_gradient_conclusion_compares_the_first_step_with_the_last():
    table = pd.DataFrame([
        {"model": m, "stage": s, "t": t, "grad_norm": v}
        for m, s, first in [("rnn", "init", 1e-6), ("lstm", "init", 1e-2),
                            ("rnn", "trained", 1e-8), ("lstm", "trained", 1e-1)]
        for t, v in [(0, first), (1, 0.5), (2, 1.0)]
    ])  # fmt: skip
    sentence, metrics = gradients.conclusion(table)
    assert metrics["rnn_init_t0_over_last"] == 1e-6 and metrics["lstm_trained_grad_t0"] == 1e-1
    assert sentence == ("||dL/dx_0|| / ||dL/dx_2||, at initialisation: rnn 1.0e-06, lstm "
                        "1.0e-02; after training: rnn 1.0e-08, lstm 1.0e-01.")  # fmt: skip


def test_the_gradients_experiment_runs_and_is_tracked(tmp_path):
    uri, summary = _run_small(tmp_path, tmp_path, shrunk_overrides("gradients"))
    table = pd.read_csv(tmp_path / "gradients" / "gradients.csv")
    assert len(table) == 4 * 2 * 20  # 4 models x (init, trained) x 20 steps
    assert set(summary["metrics"]) >= {"rnn_init_t0_over_last", "tcn_final_mse"}
    assert MlflowClient(uri).get_run(summary["mlflow_run_id"]).info.status == "FINISHED"


def test_the_plain_loop_does_the_lab_paths_work_exactly(tmp_path, prepared_root, monkeypatch):
    """Same initial weights, batch order, optimizer, schedule and clipping: without dropout the
    plain loop and convrec.training.train end on the same test accuracy."""
    from convrec.experiments.overhead import case_config, convrec_fit, plain_fit

    monkeypatch.chdir(tmp_path)
    case = OmegaConf.create({"task": "mnist1d", "model": "mlp", "overrides": [
        "trainer.max_epochs=2", "model.net.dropout=0.0", "trainer.gradient_clip_val=1.0"]})
    bench = OmegaConf.create({"device": "cpu", "paths": {"prepared": str(prepared_root)}})
    cfg = OmegaConf.create(case_config(REPO, case, tmp_path, bench))
    lab = convrec_fit(cfg, REPO)
    seconds, plain = plain_fit(cfg, REPO, torch.device("cpu"), lab["precision"])
    assert seconds > 0 and lab["train_seconds"] > 0
    assert plain == pytest.approx(lab["value"], abs=0.1)  # 1000 test samples: one is 0.1


def test_the_overhead_experiment_writes_each_models_fit_ratio(tmp_path, prepared):
    root = prepared("mnist", "adding")
    shrunk = [*shrunk_overrides("overhead"), "device=cpu", f"paths.prepared={root}"]
    _, summary = _run_small(tmp_path, tmp_path / "experiments", shrunk)
    models = summary["models"]
    assert set(models) == {"mnist_mlp", "mnist_cnn", "mnist_lstm", "adding_tcn"}
    for model in models.values():
        assert model["fit_ratio"] > 0 and model["convrec_seconds"] > 0
        assert math.isfinite(model["convrec_value"]) and math.isfinite(model["plain_value"])
    table = pd.read_csv(tmp_path / "experiments/overhead/overhead.csv")
    assert set(table.path) == {"convrec", "plain"} and len(table) == 8
    assert "plain PyTorch loop" in summary["conclusion"]
