"""The image experiments (claims 3-5): their conclusions from fixture tables, the variants
they build, and each one run shrunk on really prepared data, tracked in MLflow and shown in
the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import REPO, compose_config, shrunk_overrides
from convrec.bench import run_experiment
from convrec.compare.report import write_reports
from convrec.experiments import activations, parameter_economy, pooling
from convrec.experiments.image_training import ImageData, fit
from convrec.models import build_model
from convrec.models.spec import IOSpec


def _experiment(name: str):
    return compose_config("bench", [f"experiment={name}"]).experiment


def test_fit_records_train_and_test_accuracy_at_each_evaluation():
    # Two classes that differ in brightness: learnable in a few steps.
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (96,), generator=g)
    x = torch.randn(96, 1, 8, 8, generator=g) * 0.1 + y.view(-1, 1, 1, 1).float()
    data = ImageData(IOSpec("image", (1, 8, 8), 2), (x[:64], y[:64]), (x[64:], y[64:]))
    torch.manual_seed(0)
    model = build_model("mlp", data.spec, hidden=[8], dropout=0.0)
    curve = fit(model, data, epochs=3, batch_size=16, lr=0.05, seed=0, evals_per_epoch=2)
    assert list(curve["step"]) == [2, 4, 6, 8, 10, 12]  # 4 steps an epoch, 2 evaluations each
    assert list(curve["samples"])[-1] == 3 * 64 and list(curve["epoch"])[-1] == 3.0
    assert curve["test_acc"].iloc[-1] == 100.0 and curve["train_acc"].iloc[-1] == 100.0


def test_the_activation_conclusion_gives_images_to_target_or_says_never():
    table = pd.DataFrame([
        {"activation": a, "samples": s, "test_acc": acc, "train_loss": 1.0}
        for a, points in [("relu", [(100, 50.0), (200, 91.0), (300, 95.0)]),
                          ("sigmoid", [(100, 11.0), (200, 12.0), (300, 11.5)])]
        for s, acc in points
    ])  # fmt: skip
    sentence, metrics = activations.conclusion(table, 90.0)
    assert metrics == {"relu_final_test_acc": 95.0, "relu_samples_to_target": 200,
                       "sigmoid_final_test_acc": 11.5}  # fmt: skip
    assert sentence == ("Target 90% test accuracy: relu reached it after 200 images and ended "
                        "at 95.0%; sigmoid never did (best 12.0%, final 11.5%).")  # fmt: skip


def test_pooling_variants_cross_each_downsampling_with_dropout_on_and_off():
    nets = pooling.variants(_experiment("pooling"))
    assert len(nets) == 6
    assert nets["strided_conv", "off"] | {} == {**nets["strided_conv", "off"], "pool": None,
                                                "stride": 2, "dropout": 0.0}  # fmt: skip
    assert nets["avg_pool", "on"]["pool"] == "avg" and nets["avg_pool", "on"]["dropout"] > 0
    spec = IOSpec("image", (1, 28, 28), 10)
    shapes = {down: build_model("cnn", spec, **nets[down, "on"]).features.output_shape((1, 28, 28))
              for down in ("max_pool", "avg_pool", "strided_conv")}  # fmt: skip
    assert len(set(shapes.values())) == 1  # each downsamples to the same feature map


def test_the_pooling_conclusion_averages_dropout_over_the_downsamplings():
    rows = [("max_pool", "on", 90, 85), ("max_pool", "off", 99, 84),
            ("avg_pool", "on", 88, 84), ("avg_pool", "off", 97, 82)]  # fmt: skip
    table = pd.DataFrame([{"downsampling": d, "dropout": o, "params": 1, "epoch": 1,
                           "train_acc": tr, "test_acc": te} for d, o, tr, te in rows])  # fmt: skip
    scores = pooling.final_scores(table)
    assert list(scores["gap"]) == [5, 15, 4, 15]
    sentence, metrics = pooling.conclusion(scores)
    assert metrics["max_pool_dropout_off_gap"] == 15.0
    assert sentence == ("Best test accuracy: max_pool with dropout on (85.0%); averaged over "
                        "the three downsamplings, dropout changed the overfitting gap from 15.0 "
                        "to 4.5 points and test accuracy from 83.0% to 84.5%.")  # fmt: skip


def test_an_mlp_first_layer_grows_with_the_image_area_and_conv_layers_do_not():
    cfg = _experiment("parameter_economy")
    sizes = parameter_economy.growth(OmegaConf.merge(cfg, {"resolutions": [28, 56]}))
    at = sizes.set_index(["family", "side"])
    width = cfg.sizes.mlp[-1].hidden[0]
    assert at.loc[("mlp", 56), "first_linear"] == 56 * 56 * width + width  # weights + biases
    assert at.loc[("mlp", 28), "conv"] == 0
    assert at.loc[("cnn", 28), "conv"] == at.loc[("cnn", 56), "conv"] > 0


@pytest.mark.parametrize("name", ["activations", "pooling", "parameter_economy"])
def test_an_image_experiment_runs_on_prepared_data_and_is_tracked(name, tmp_path, prepared):
    root = prepared("mnist", "fashion_mnist")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    paths = [f"paths.prepared={root}", f"paths.results={tmp_path / 'experiments'}"]
    cfg = compose_config("bench", [*shrunk_overrides(name), "device=cpu", *paths,
                                   f"tracking.uri={uri}"])  # fmt: skip
    summary = run_experiment(cfg, REPO)
    out = tmp_path / "experiments" / name
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / summary["figure"]).stat().st_size > 10_000
    assert len(pd.read_csv(out / summary["table"])) > 0
    run = MlflowClient(uri).get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["conclusion"] == summary["conclusion"]
    assert set(summary["metrics"]) <= set(run.data.metrics)

    reports = write_reports(tmp_path, [], tmp_path / "reports", experiments=[name])
    page = (reports / "index.html").read_text()
    assert summary["conclusion"] in page
    for text in summary.get("texts", []):  # the layer tables, shown whole
        assert (out / text).read_text().splitlines()[3].strip() in page
    assert summary["conclusion"] in (reports / "leaderboard.md").read_text()
