import json

from convrec.compare.leaderboard import collect, to_markdown
from convrec.compare.report import write_reports


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
    assert "| cnn | cnn | 99.20 | 206,970 |" in markdown
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
