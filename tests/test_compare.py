import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import run_metrics
from convrec.compare.leaderboard import (
    collect,
    family_summary,
    other_metrics,
    pareto_front,
    to_markdown,
)
from convrec.compare.provenance import data_hashes
from convrec.compare.references import load_references
from convrec.compare.report import write_reports
from convrec.compare.significance import differs
from convrec.errors import ConvrecError
from convrec.results import aggregate


def _metrics(results, task, model, family, value, params):
    folder = results / task / model
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(run_metrics(
        task=task, model=model, family=family, value=value, params=params)))  # fmt: skip


def _two_mnist_runs(tmp_path):
    """results/ with a CNN (and its history) and an LSTM on mnist."""
    results = tmp_path / "results"
    _metrics(results, "mnist", "cnn", "cnn", 99.2, 206_970)
    _metrics(results, "mnist", "lstm", "rnn", 98.4, 82_186)
    (results / "mnist" / "cnn" / "history.csv").write_text(
        "epoch,train/loss,val/loss,val/acc\n1,0.4,0.1,0.97\n2,0.1,0.05,0.985\n"
    )
    return results


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
    assert "| cnn | cnn | 99.20 | 1 | - | - | 206,970 |" in markdown
    assert "| lstm | - | - | - | - |" in markdown and "missing" in markdown


def test_reports_are_written_with_their_figures_inlined_in_one_page(tmp_path):
    results = _two_mnist_runs(tmp_path)
    (results / "mnist" / "gru").mkdir()  # started, left no result
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "lstm", "gru", "mlp")]
    out = write_reports(results, runs, tmp_path / "reports")
    assert (out / "leaderboard.csv").read_text().startswith("task,model,family,metric,value")
    figures = sorted((out / "figures").glob("*.png"))
    assert [f.name for f in figures] == ["accuracy_vs_params.png", "accuracy_vs_time.png",
                                         "family_matrix.png", "learning_curves.png"]  # fmt: skip
    for figure in figures:
        png = figure.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, figure.name
    page = (out / "index.html").read_text()
    inlined = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert sorted(base64.b64decode(data) for data in inlined) == sorted(
        f.read_bytes() for f in figures
    )
    assert '<tr class="failed"><td>-</td><td>gru</td>' in page
    assert '<tr class="missing"><td>-</td><td>mlp</td>' in page
    assert "<dt>git commit</dt><dd>unknown (not a git checkout)</dd>" in page
    assert "torch " in page and "not recorded" in page  # no dvc.lock: data not from dvc repro


def test_a_run_without_a_readable_finite_result_shows_as_failed(tmp_path):
    results = tmp_path / "results"
    _metrics(results, "mnist", "cnn", "cnn", float("nan"), 206_970)
    (results / "mnist" / "lstm").mkdir(parents=True)
    (results / "mnist" / "lstm" / "metrics.json").write_text("{truncated")
    (results / "mnist" / "gru").mkdir()
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "lstm", "gru", "mlp")]
    table = collect(results, runs)
    assert dict(zip(table.model, table.status, strict=True)) == {
        "cnn": "failed", "lstm": "failed", "gru": "failed", "mlp": "missing",
    }  # fmt: skip
    assert "| mlp | - |" in to_markdown(table) and "failed" in to_markdown(table)


def test_the_family_summary_keeps_each_familys_best_relative_to_the_task_best(tmp_path):
    results = tmp_path / "results"
    _metrics(results, "mnist", "cnn", "cnn", 99.0, 1)
    _metrics(results, "mnist", "tcn", "cnn", 90.0, 1)
    _metrics(results, "mnist", "lstm", "rnn", 49.5, 1)
    for model, value in (("tcn", 0.002), ("gru", 0.004)):
        folder = results / "adding" / model
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(run_metrics(
            task="adding", model=model, family={"tcn": "cnn"}.get(model, "rnn"),
            metric="mse", value=value, higher_is_better=False, params=1)))  # fmt: skip
    runs = [{"task": t, "model": m} for t, m in
            [("mnist", "cnn"), ("mnist", "tcn"), ("mnist", "lstm"), ("adding", "tcn"),
             ("adding", "gru")]]  # fmt: skip
    summary = family_summary(collect(results, runs))
    rows = {(r.task, r.family): (r.model, r.relative) for r in summary.itertuples()}
    assert rows == {("adding", "cnn"): ("tcn", 100.0), ("adding", "rnn"): ("gru", 50.0),
                    ("mnist", "cnn"): ("cnn", 100.0), ("mnist", "rnn"): ("lstm", 50.0)}  # fmt: skip


def test_the_pareto_front_keeps_runs_no_cheaper_run_beats():
    assert pareto_front([1, 2, 3, 4], [50, 90, 80, 95], higher_is_better=True) == [
        True, True, False, True,
    ]  # fmt: skip
    assert pareto_front([1, 2, 3], [0.5, 0.2, 0.2], higher_is_better=False) == [True, True, False]
    assert pareto_front([1, 1], [60, 60], higher_is_better=True) == [True, True]  # ties both stay


def test_provenance_reads_each_prepared_datasets_hash_from_the_dvc_lock(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare@mnist:\n    cmd: python pipelines/prepare.py\n"
        "    outs:\n    - path: data/prepared/mnist\n      hash: md5\n"
        "      md5: 613f9bd85b5eeede23b0bbc0fa71e09a.dir\n"
        "  train@mnist-cnn:\n    outs:\n    - path: results/mnist/cnn\n      md5: ab.dir\n"
    )
    assert data_hashes(tmp_path / "dvc.lock") == {
        "data/prepared/mnist": "613f9bd85b5eeede23b0bbc0fa71e09a.dir"
    }
    assert data_hashes(tmp_path / "absent.lock") == {}


def test_published_numbers_sit_beside_ours_with_a_delta_only_under_the_same_protocol(tmp_path):
    results = tmp_path / "results"
    full = {"profile": "full", "train_examples": 50, "test_examples": 150, "epochs": 2000}
    _metrics(results, "gunpoint", "fcn", "cnn", 98.0, 264_450)
    _metrics(results, "gunpoint", "lstm", "rnn", 90.0, 67_000)
    _metrics(results, "gunpoint", "resnet1d", "cnn", 97.0, 500_000)
    for model, protocol in (("fcn", full), ("resnet1d", {**full, "profile": "quick"})):
        path = results / "gunpoint" / model / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "protocol": protocol}))
    conf = tmp_path / "task"
    conf.mkdir()
    published = "{profile: full, train_examples: 50, test_examples: 150}"
    fawaz = "Fawaz et al. 2019, Table 4"
    (conf / "gunpoint.yaml").write_text(
        "name: gunpoint\nreferences:\n"
        f"  - {{model: fcn, value: 100.0, source: '{fawaz}', protocol: {published}}}\n"
        f"  - {{model: resnet1d, value: 99.1, source: '{fawaz}', protocol: {published}}}\n"
        f"  - {{model: lstm_fcn, value: 99.0, source: 'Karim et al.', protocol: {published}}}\n"
    )  # fmt: skip
    runs = [{"task": "gunpoint", "model": m} for m in ("fcn", "lstm", "resnet1d")]
    out = write_reports(results, runs, tmp_path / "reports", conf)
    table = collect(results, runs, load_references(conf, ["gunpoint"]))
    fcn = table[table.model == "fcn"].iloc[0]
    assert fcn.reference == 100.0 and fcn.delta == -2.0 and "Fawaz" in fcn.reference_source
    # a quick-profile run beside a full-protocol reference: the number, no delta
    resnet = table[table.model == "resnet1d"].iloc[0]
    assert resnet.reference == 99.1 and pd.isna(resnet.delta)
    assert resnet.reference_protocol.endswith("different protocol: no delta")
    assert list(table.status) == ["ok", "ok", "ok", "published"]  # lstm_fcn: published only
    markdown = (out / "leaderboard.md").read_text()
    assert "| fcn | cnn | 98 | 1 | 100 | -2 |" in markdown
    assert "| resnet1d | cnn | 97 | 1 | 99.10 | - |" in markdown
    assert ("- resnet1d: 99.10, Fawaz et al. 2019, Table 4; profile full, train_examples 50, "
            "test_examples 150; different protocol: no delta") in markdown  # fmt: skip


def test_a_reference_without_its_protocol_is_refused(tmp_path):
    (tmp_path / "imdb.yaml").write_text(
        "references:\n  - {model: null, value: 88.89, source: Maas, protocol: {profile: full}}\n"
    )
    with pytest.raises(ConvrecError, match="declares no train_examples, test_examples"):
        load_references(tmp_path, ["imdb"])


def test_lower_is_better_metrics_rank_ascending(tmp_path):
    results = tmp_path / "results"
    for model, value in (("tcn", 0.0004), ("gru", 0.002), ("lstm", 0.16)):
        folder = results / "adding" / model
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(run_metrics(
            task="adding", model=model, family="rnn", metric="mse", value=value,
            higher_is_better=False, params=1000,
            baseline={"value": 0.1667, "what": "1"})))  # fmt: skip
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


def test_dvc_reads_the_verdict_in_a_few_numbers_and_one_curve_file_per_task(tmp_path):
    results = _two_mnist_runs(tmp_path)
    (results / "mnist" / "lstm" / "history.csv").write_text("epoch,val/loss\n1,0.3\n")
    _metrics(results, "mnist", "mlp", "mlp", 97.0, 1000)  # a baseline: no column of its own
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "lstm", "gru", "mlp")]
    out = write_reports(results, runs, tmp_path / "reports")
    # one seed each: no test can call a winner
    assert json.loads((out / "metrics.json").read_text()) == {
        "rank": {"cnn": 1.0, "rnn": 2.0}, "wins": {"cnn": 0, "rnn": 0}, "ties": 0, "untested": 1
    }
    curves = (out / "curves" / "mnist.csv").read_text().splitlines()
    assert curves == ["epoch,model,metric,value", "1,cnn,val/acc,0.97", "2,cnn,val/acc,0.985",
                      "1,lstm,val/loss,0.3"]  # fmt: skip


def test_each_classification_task_gets_its_runs_confusion_matrices_under_its_table(tmp_path):
    results = _two_mnist_runs(tmp_path)
    _metrics(results, "mnist1d", "gru", "rnn", 95.0, 51_594)  # left no confusion matrix
    names = [str(i) for i in range(10)]
    counts = np.eye(10, dtype=int) * 50
    counts[3, 5] = 7  # one class confused with another: a visible cell
    pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=names).to_csv(
        results / "mnist" / "cnn" / "confusion.csv"
    )
    runs = [{"task": "mnist", "model": "cnn"}, {"task": "mnist", "model": "lstm"},
            {"task": "mnist1d", "model": "gru"}]  # fmt: skip
    out = write_reports(results, runs, tmp_path / "reports")
    assert sorted(p.name for p in (out / "figures").glob("confusion_*")) == ["confusion_mnist.png"]
    page = (out / "index.html").read_text()
    mnist, mnist1d = page.index("<h2>mnist <small>"), page.index("<h2>mnist1d <small>")
    assert mnist < page.index('alt="mnist: test confusion matrices"') < mnist1d


def test_the_leaderboard_shows_each_runs_measured_latency_and_memory(tmp_path):
    results = _two_mnist_runs(tmp_path)
    metrics = json.loads((results / "mnist/cnn/metrics.json").read_text())
    metrics |= {"latency_ms": 0.4321, "memory_mb": 35.25}
    (results / "mnist/cnn/metrics.json").write_text(json.dumps(metrics))
    out = write_reports(results, [{"task": "mnist", "model": "cnn"}], tmp_path / "reports")
    table = pd.read_csv(out / "leaderboard.csv")
    assert table.loc[0, "latency_ms"] == 0.4321 and table.loc[0, "memory_mb"] == 35.25
    markdown = (out / "leaderboard.md").read_text()
    assert "| latency_ms | memory_mb |" in markdown and "| 0.43 | 35.25 |" in markdown


def test_each_task_s_protocol_is_printed_above_its_table_and_a_mismatch_is_named(tmp_path):
    results = _two_mnist_runs(tmp_path)
    shared = {"profile": "quick", "epochs": 2, "train_examples": 55000, "test_examples": 10000}
    for model, protocol in (("cnn", shared), ("lstm", {**shared, "epochs": 1})):
        path = results / "mnist" / model / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "protocol": protocol}))
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "lstm")]
    markdown = to_markdown(collect(results, runs))
    assert "differs between runs, so they do not compare: cnn: profile quick, epochs 2" in markdown
    assert "lstm: profile quick, epochs 1" in markdown

    path = results / "mnist" / "lstm" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "protocol": shared}))
    markdown = to_markdown(collect(results, runs))
    expected = ("Protocol (every model): profile quick, epochs 2, train_examples 55000, "
                "test_examples 10000.")  # fmt: skip
    assert expected in markdown


def _seeded(results, task, model, family, values):
    """An aggregate of len(values) seeds, made by the code training uses."""
    runs = [run_metrics(task=task, model=model, family=family, value=v, seed=i)
            for i, v in enumerate(values)]  # fmt: skip
    folder = results / task / model
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(aggregate(runs, mlflow_run_id="p")))


def test_welch_s_test_calls_ties_and_says_what_it_does_with_zero_variance_and_one_seed():
    assert differs([99.0, 99.1, 99.2], [97.0, 97.1, 97.2]) is True
    assert differs([99.0, 98.0, 100.0], [98.5, 99.5, 97.5]) is False
    assert differs([50.0, 50.0, 50.0], [50.0, 50.0, 50.0]) is False  # equal and exact: a tie
    assert differs([50.0, 50.0, 50.0], [49.0, 49.0, 49.0]) is True  # exact and different
    assert differs([99.0], [97.0, 97.1]) is None  # one seed: untested


def test_ranks_say_tied_where_the_seeds_do_not_separate_runs_and_ties_reach_the_family_matrix(
    tmp_path,
):
    results = tmp_path / "results"
    _seeded(results, "mnist", "cnn", "cnn", [99.1, 99.2, 99.3])
    _seeded(results, "mnist", "cnn_lstm", "hybrid", [98.6, 99.4, 99.0])  # overlaps the CNN
    _seeded(results, "mnist", "lstm", "rnn", [97.0, 97.2, 97.1])
    _seeded(results, "mnist1d", "cnn", "cnn", [95.0, 95.2, 95.1])
    _seeded(results, "mnist1d", "gru", "rnn", [90.0, 90.3, 90.1])
    # a lower mean than the GRU's, but seeds so spread that the best does not beat it: listed
    # with the best, so the ranks read down never go back to 1 (FSDD's LSTM in a quick repro)
    _seeded(results, "mnist1d", "tcn", "cnn", [96.0, 82.0, 90.0])
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "cnn_lstm", "lstm")]
    runs += [{"task": "mnist1d", "model": m} for m in ("cnn", "gru", "tcn")]
    table = collect(results, runs)
    assert list(zip(table.model, table["rank"], strict=True)) == [
        ("cnn", "1"), ("cnn_lstm", "1 (tied)"), ("lstm", "3"),
        ("cnn", "1"), ("tcn", "1 (tied)"), ("gru", "3"),
    ]  # fmt: skip
    winners = family_summary(table).groupby("task")["winner"].first().to_dict()
    assert winners == {"mnist": "tie", "mnist1d": "cnn"}
    markdown = to_markdown(table)
    assert "- mnist: **tie**" in markdown and "- mnist1d: **cnn**" in markdown
    assert "Welch's two-sided t-test" in markdown


def test_no_task_with_every_family_leaves_the_cross_task_ranks_empty(tmp_path):
    results = tmp_path / "results"
    pairs = (("mnist", "cnn", "cnn"), ("mnist", "cnn_lstm", "hybrid"), ("mnist1d", "cnn", "cnn"),
             ("mnist1d", "gru", "rnn"))  # fmt: skip
    for task, model, family in pairs:
        _seeded(results, task, model, family, [90.0, 91.0])
    runs = [{"task": task, "model": model} for task, model, _ in pairs]
    reports = write_reports(results, runs, tmp_path / "reports")
    verdict = json.loads((reports / "metrics.json").read_text())  # strict JSON: no NaN rank
    assert verdict["rank"] == {}
    assert "## Across tasks" not in (reports / "leaderboard.md").read_text()


THREE = [("cnn", "cnn", 90.0), ("lstm", "rnn", 80.0), ("cnn_lstm", "hybrid", 85.0)]


def _seeded_tasks(results, families_by_task):
    """Three seeds of each (model, family, base) on each task, task number n adding n to
    every base, so each family keeps its place on every task; the runs, as the report takes
    them."""
    runs = []
    for number, (task, families) in enumerate(families_by_task.items()):
        for model, family, base in families:
            _seeded(results, task, model, family, [base + number, base + number + 0.1,
                                                   base + number + 0.2])  # fmt: skip
            runs.append({"task": task, "model": model})
    return runs


def test_families_are_ranked_across_the_tasks_they_all_ran_and_a_cd_diagram_is_drawn(tmp_path):
    """Also what `dvc metrics show` reads: the ranks, the wins, the ties."""
    results = tmp_path / "results"
    # t7 has no hybrid run: it is left out of the cross-task ranking
    tasks = {f"t{n}": THREE if n < 7 else THREE[:2] for n in range(1, 8)}
    runs = _seeded_tasks(results, tasks)
    reports = write_reports(results, runs, tmp_path / "reports")
    markdown = (reports / "leaderboard.md").read_text()
    assert "Average rank of each family's best run (1 = best): cnn 1.00, hybrid 2.00, rnn 3.00" in (
        markdown
    )
    assert "over the 6 tasks where each has a run (t1, t2, t3, t4, t5, t6)" in markdown
    assert (reports / "figures/critical_difference.png").stat().st_size > 5_000
    assert "Critical difference across tasks" in (reports / "index.html").read_text()
    verdict = json.loads((reports / "metrics.json").read_text())
    assert verdict["rank"] == {"cnn": 1.0, "hybrid": 2.0, "rnn": 3.0}
    assert verdict["wins"] == {"cnn": 7, "hybrid": 0, "rnn": 0} and verdict["ties"] == 0


def test_the_scan_family_gets_its_own_comparison_over_the_tasks_where_all_four_ran(tmp_path):
    """The three families keep their ranks over every task where they ran; the scan family
    joins them in a second diagram over the tasks where it ran too."""
    results = tmp_path / "results"
    scan = ("mingru", "scan", 95.0)  # t7: no scan run, so it counts for the three only
    tasks = {f"t{n}": [*THREE, scan] if n < 7 else THREE for n in range(1, 8)}
    runs = _seeded_tasks(results, tasks)
    reports = write_reports(results, runs, tmp_path / "reports")
    markdown = (reports / "leaderboard.md").read_text()
    assert "cnn 1.00, hybrid 2.00, rnn 3.00; families cnn, rnn, hybrid over the 7 tasks" in markdown
    assert ("scan 1.00, cnn 2.00, hybrid 3.00, rnn 4.00; families cnn, rnn, hybrid, scan over "
            "the 6 tasks") in markdown
    for name in ("critical_difference", "critical_difference_scan"):
        assert (reports / f"figures/{name}.png").stat().st_size > 5_000
    verdict = json.loads((reports / "metrics.json").read_text())
    assert verdict["rank"] == {"cnn": 1.0, "hybrid": 2.0, "rnn": 3.0}
    assert set(verdict["wins"]) == {"cnn", "hybrid", "rnn"}  # 120 columns: no scan column


def test_time_to_accuracy_gives_each_model_its_seconds_to_the_task_target_and_a_figure(tmp_path):
    results = tmp_path / "results"
    curves = {"cnn": [0.90, 0.98, 0.99], "lstm": [0.50, 0.70, 0.80]}  # the target: 0.95 x 0.99
    for model, family in (("cnn", "cnn"), ("lstm", "rnn")):
        _seeded(results, "mnist", model, family, [90.0, 91.0])
        for seed in (0, 1):
            folder = results / "mnist" / model / "seeds" / str(seed)
            folder.mkdir(parents=True)
            rows = [f"{e + 1},0.1,{acc},{100},{2.0 + seed}" for e, acc in enumerate(curves[model])]
            (folder / "history.csv").write_text(
                "epoch,val/loss,val/acc,samples,train_seconds\n" + "\n".join(rows) + "\n"
            )
    runs = [{"task": "mnist", "model": m} for m in ("cnn", "lstm")]
    reports = write_reports(results, runs, tmp_path / "reports")
    table = pd.read_csv(reports / "leaderboard.csv").set_index("model")
    # epoch 2 reaches 0.9405: 2 epochs of 2 s (seed 0) and of 3 s (seed 1), 5 s on average
    assert table.loc["cnn", "time_to_target"] == "5.0"
    assert table.loc["lstm", "time_to_target"] == "not reached"
    assert table.loc["cnn", "target"] == "val/acc >= 0.9405"
    assert (reports / "figures/time_to_accuracy_mnist.png").stat().st_size > 5_000
    page = (reports / "index.html").read_text()
    assert "mnist: time to accuracy (target: 95% of the best" in page
    assert "time_to_target: training seconds to val/acc >= 0.9405" in (
        reports / "leaderboard.md"
    ).read_text()
