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

from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.kinds import KINDS, checksums, labels_of, read_splits, read_table
from convrec.data.labels import encode_labels, majority_baseline
from convrec.data.tasks import by_profile
from convrec.data.text import encode_splits

SUFFIXES = (".csv", ".tsv", ".parquet")


@KINDS.register("text_table")
def text_table(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train, test, paths = read_splits(cfg, SUFFIXES, lambda path: read_texts(path, cfg.source))
    class_names, train_y, test_y = encode_labels(train[1], test[1], str(paths[cfg.source.train]))
    vocab, encoded = encode_splits(
        train[0], test[0], min_freq=int(cfg.min_freq),
        max_size=int(by_profile(cfg.max_vocab, cfg.profile)),
        max_len=int(by_profile(cfg.max_len, cfg.profile)),
    )  # fmt: skip
    (train_x, train_lengths), (test_x, test_lengths) = encoded["train"], encoded["test"]
    return RawSplits(
        train=Split(train_x, train_y, lengths=train_lengths),
        test=Split(test_x, test_y, lengths=test_lengths),
        input_kind="tokens",
        class_names=class_names,
        vocab=vocab.tokens,
        baseline=majority_baseline(train_y, test_y, class_names),
        sources=checksums(paths),
    )


def read_texts(path: Path, source: DictConfig) -> tuple[list[str], list[str]]:
    """A table's texts and labels (as strings); a missing text reads as an empty one."""
    text, label = str(source.text_column), str(source.label_column)
    table = read_table(path, {"text_column": text, "label_column": label})
    texts = [str(t) if isinstance(t, str) else "" for t in table[text]]
    return texts, labels_of(table[label], path)
