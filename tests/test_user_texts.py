"""A user's own texts (source kind `text_table`): one YAML file in conf/task/, no Python;
composed for real from a copy of conf/ (the `user_conf` fixture), prepared and trained through
the code the stages run."""

from __future__ import annotations

import json

import pytest
import torch

from convrec.compose import compose_config
from convrec.data.contract import load_meta, load_split
from convrec.data.prepare import prepare_task
from convrec.errors import ConvrecError
from convrec.training import train

GOOD = ["a fine film", "wonderful and moving", "great acting, great story", "i loved it"]
BAD = ["a dull film", "boring and slow", "terrible acting", "i hated it"]


def _texts(n: int) -> list[tuple[str, str]]:
    return [(GOOD[i % 4] if i % 2 == 0 else BAD[i % 4], "pos" if i % 2 == 0 else "neg")
            for i in range(n)]  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_table_of_texts_prepares_with_a_train_only_vocabulary_and_trains(
    user_conf, tmp_path, suffix
):
    sep = "\t" if suffix == ".tsv" else ","
    (tmp_path / "data").mkdir()
    rows = [f"review{sep}sentiment", *(f'"{t}"{sep}{label}' if sep == "," else f"{t}\t{label}"
                                       for t, label in _texts(80))]  # fmt: skip
    (tmp_path / "data" / f"reviews{suffix}").write_text("\n".join(rows) + "\n")
    task = user_conf("my_reviews", f"""\
        defaults: [/source/text_table@_here_, _self_]
        name: my_reviews
        source:
          train: data/reviews{suffix}
          text_column: review
          label_column: sentiment
        batch_size: 8
        """)  # fmt: skip
    prepared = prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    meta = load_meta(prepared)
    assert meta["input_kind"] == "tokens" and meta["variable_length"]
    assert meta["class_names"] == ["neg", "pos"]
    assert meta["split_sizes"] == {"train": 58, "val": 6, "test": 16}
    vocab = (prepared / "vocab.txt").read_text().splitlines()
    assert vocab[:2] == ["<pad>", "<unk>"] and "great" in vocab and "," in vocab
    test = load_split(prepared, "test")
    assert torch.bincount(test.y).tolist() == [8, 8]

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(tmp_path / "conf", "train", [
        "task=my_reviews", "model=textcnn", "profile=tiny",
        f"paths.prepared={tmp_path / 'prepared'}", f"tracking.uri={uri}",
    ])  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "results/my_reviews/textcnn/metrics.json").read_text())
    assert metrics["test_samples"] == 16


@pytest.mark.parametrize(("rows", "message"), [
    (["review,label", "good,pos"], r"has no column 'text'.*source.text_column"),
    (["text,stars", "good,5"], r"has no column 'label'.*source.label_column"),
    (["text,label"], r"has a header but no rows"),
    (["text,label", "good,pos", "bad,"], r"line 3: the label is missing"),
])  # fmt: skip
def test_malformed_text_tables_are_refused_with_one_line(user_conf, tmp_path, rows, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("\n".join(rows) + "\n")
    task = user_conf("bad_texts", """\
        defaults: [/source/text_table@_here_, _self_]
        name: bad_texts
        source: {train: data/t.csv}
        """)  # fmt: skip
    with pytest.raises(ConvrecError, match=message) as refused:
        prepare_task(task, tmp_path / "prepared", tmp_path / "raw")
    assert "\n" not in str(refused.value) and not (tmp_path / "prepared").exists()
