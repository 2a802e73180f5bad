import json

import pytest

from convrec.compare.leaderboard import collect, other_metrics, to_markdown
from convrec.compare.references import load_references
from convrec.compare.report import write_reports
from convrec.errors import ConvrecError


def _metrics(results, task, model, family, value, params):
    folder = results / task / model
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "task": task, "model": model, "family": family, "metric": "accuracy", "value": value,
        "params": params, "train_seconds": 12.5, "samples_per_second": 4000.0, "epochs": 3,
    }))  # fmt: skip


def test_leaderboard_ranks_runs_per_task_and_shows_missing_ones(tmp_path):
    results = tmp_path / "results"
    _metrics(results, "mnist", "mlp", "mlp", 97.9, 535_818)
    _metrics(results, "mnist", "cnn", "cnn", 99.2, 206_970)
    _metrics(results, "mnist1d", "gru", "rnn", 95.0, 51_594)
    runs = [{"task": "mnist", "model": m} for m in ("mlp", "cnn", "lstm")]
    runs.append({"task": "mnist1d", "model": "gru"})

    table = collect(results, runs)
    assert list(zip(table.task, table.model, table.status, strict=True)) == [
        ("mnist", "cnn", "ok"), ("mnist", "mlp", "ok"), ("mnist", "lstm", "missing"),
        ("mnist1d", "gru", "ok"),
    ]  # fmt: skip
    markdown = to_markdown(table)
    assert "## mnist (accuracy, %)" in markdown
    assert "| cnn | cnn | 99.20 | - | - | 206,970 |" in markdown
    assert "| lstm | - | - | - |" in markdown and "missing" in markdown


def test_reports_are_written_with_a_figure(tmp_path):
    results = tmp_path / "results"
    _metrics(results, "mnist", "cnn", "cnn", 99.2, 206_970)
    _metrics(results, "mnist", "lstm", "rnn", 98.4, 82_186)
    runs = [{"task": "mnist", "model": "cnn"}, {"task": "mnist", "model": "lstm"}]
    out = write_reports(results, runs, tmp_path / "reports")
    assert (out / "leaderboard.csv").read_text().startswith("task,model,family,metric,value")
    png = (out / "figures" / "accuracy_vs_params.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_published_numbers_sit_beside_ours_with_their_source_and_delta(tmp_path):
    results = tmp_path / "results"
    _metrics(results, "gunpoint", "fcn", "cnn", 98.0, 264_450)
    _metrics(results, "gunpoint", "lstm", "rnn", 90.0, 67_000)
    conf = tmp_path / "task"
    conf.mkdir()
    (conf / "gunpoint.yaml").write_text(
        "name: gunpoint\nreferences:\n"
        "  - {model: fcn, value: 100.0, source: 'Fawaz et al. 2019, Table 4'}\n"
        "  - {model: resnet1d, value: 99.1, source: 'Fawaz et al. 2019, Table 4'}\n"
    )
    runs = [{"task": "gunpoint", "model": m} for m in ("fcn", "lstm")]
    out = write_reports(results, runs, tmp_path / "reports", conf)
    table = collect(results, runs, load_references(conf, ["gunpoint"]))
    fcn = table[table.model == "fcn"].iloc[0]
    assert fcn.reference == 100.0 and fcn.delta == -2.0 and "Fawaz" in fcn.reference_source
    assert list(table.status) == ["ok", "ok", "published"]  # resnet1d: published, not run
    markdown = (out / "leaderboard.md").read_text()
    assert "| fcn | cnn | 98 | 100 | -2 |" in markdown
    assert "- resnet1d: 99.10, Fawaz et al. 2019, Table 4" in markdown


def test_lower_is_better_metrics_rank_ascending(tmp_path):
    results = tmp_path / "results"
    for model, value in (("tcn", 0.0004), ("gru", 0.002), ("lstm", 0.16)):
        folder = results / "adding" / model
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "task": "adding", "model": model, "family": "rnn", "metric": "mse", "value": value,
            "higher_is_better": False, "params": 1000, "baseline": {"value": 0.1667, "what": "1"},
        }))  # fmt: skip
    table = collect(results, [{"task": "adding", "model": m} for m in ("lstm", "gru", "tcn")])
    assert list(table.model) == ["tcn", "gru", "lstm"]
    markdown = to_markdown(table)
    assert "## adding (mse, lower is better)" in markdown and "4.00e-04" in markdown
    assert "Trivial baseline: 0.17." in markdown


def test_a_reference_without_a_source_is_refused(tmp_path):
    (tmp_path / "imdb.yaml").write_text("references:\n  - {model: null, value: 88.89}\n")
    with pytest.raises(ConvrecError, match="needs a value and a source"):
        load_references(tmp_path, ["imdb"])


def test_other_test_metrics_are_listed_beside_the_headline():
    metrics = {"metric_key": "test/acc",
               "test": {"test/loss": 0.3, "test/acc": 0.9, "test/der": 0.034}}  # fmt: skip
    assert other_metrics(metrics) == "der 3.40"
    assert other_metrics({"metric_key": "test/loss", "test": {"test/loss": 0.1}}) == ""
