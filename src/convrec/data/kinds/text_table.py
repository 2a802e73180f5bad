"""The `text_table` source kind: a user's labelled texts, from a CSV, TSV or Parquet table.

    # conf/task/my_reviews.yaml
    defaults: [/source/text_table@_here_, _self_]
    name: my_reviews
    source:
      train: data/user/reviews_train.csv  # relative to the project root, or absolute
      test: data/user/reviews_test.csv    # optional: else a seeded, stratified test_fraction
      text_column: review                 # default: text
      label_column: sentiment             # default: label

Texts become token ids as IMDB's and SST-2's do (convrec.data.text): the same tokenizer, and
a vocabulary built from the training split only, so no test word leaks in.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.kinds import (
    KINDS,
    checksums,
    labels_of,
    read_table,
    source_file,
    stratified_split,
    two_classes,
)
from convrec.data.tasks import by_profile
from convrec.data.text import encode_splits
from convrec.errors import ConvrecError
from convrec.paths import project_root

SUFFIXES = (".csv", ".tsv", ".parquet")


@KINDS.register("text_table")
def text_table(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    source, root = cfg.source, project_root()
    paths = {source.train: source_file(source.train, "source.train", cfg.name, root, SUFFIXES)}
    train = read_texts(paths[source.train], source)
    if source.get("test"):
        paths[source.test] = source_file(source.test, "source.test", cfg.name, root, SUFFIXES)
        test = read_texts(paths[source.test], source)
    else:
        train, test = stratified_split(train, source.test_fraction, int(cfg.split_seed),
                                       str(paths[source.train]))  # fmt: skip
    two_classes(train[1], paths[source.train])
    class_names = sorted(set(train[1]))
    unseen = sorted(set(test[1]) - set(class_names))
    if unseen:
        raise ConvrecError(f"{paths[source.train]}: test labels {unseen} never occur in the "
                           "train split; every class needs training examples")  # fmt: skip
    vocab, encoded = encode_splits(
        train[0], test[0], min_freq=int(cfg.min_freq),
        max_size=int(by_profile(cfg.max_vocab, cfg.profile)),
        max_len=int(by_profile(cfg.max_len, cfg.profile)),
    )  # fmt: skip
    index = {name: i for i, name in enumerate(class_names)}
    train_y = torch.tensor([index[label] for label in train[1]], dtype=torch.int64)
    test_y = torch.tensor([index[label] for label in test[1]], dtype=torch.int64)
    majority = int(torch.bincount(train_y, minlength=len(class_names)).argmax())
    (train_x, train_lengths), (test_x, test_lengths) = encoded["train"], encoded["test"]
    return RawSplits(
        train=Split(train_x, train_y, lengths=train_lengths),
        test=Split(test_x, test_y, lengths=test_lengths),
        input_kind="tokens",
        class_names=class_names,
        vocab=vocab.tokens,
        baseline={
            "value": round(100.0 * float((test_y == majority).float().mean()), 2),
            "what": f"accuracy (%) of the training set's majority class "
            f"{class_names[majority]!r}",
        },
        sources=checksums(paths),
    )


def read_texts(path: Path, source: DictConfig) -> tuple[list[str], list[str]]:
    """A table's texts and labels (as strings); a missing text reads as an empty one."""
    if path.stat().st_size == 0:
        raise ConvrecError(f"{path} is empty; it must hold labelled texts")
    text, label = str(source.text_column), str(source.label_column)
    table = read_table(path, {"text_column": text, "label_column": label})
    texts = [str(t) if isinstance(t, str) else "" for t in table[text]]
    return texts, labels_of(table[label], path)
