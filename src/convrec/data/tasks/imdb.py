"""IMDB movie reviews (Maas et al. 2011): 25k train / 25k test reviews, negative or positive.

The reviews are read straight from the archive, the official `aclImdb_v1.tar.gz`
or the mirror's repacked `aclImdb_labeled.tar.xz` (the same labelled reviews),
and put in one order, whatever the archive's: by review id, negative before
positive (neg 0, pos 0, neg 1, ...). Both sources give the same tensors, and
the first N reviews of a split (task.train_limit, task.test_limit) are balanced.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from convrec.data.contract import RawSplits, Split
from convrec.data.sources import Archive, fetch_archive
from convrec.data.tasks import TASKS, by_profile
from convrec.data.text import encode_splits
from convrec.errors import ConvrecError

IMDB = Archive(
    relpath="IMDB/aclImdb_v1.tar.gz",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    md5="7c2ac02c03563afcf9b574c7e56c153a",  # torchtext's IMDB.MD5
    mirror={
        "IMDB/aclImdb_labeled.tar.xz": (
            "51e1e2b1ed25a3bc63dd9c1c4896322ed9d28cb2d5219fd5139516122f206774"
        )
    },
)
CLASSES = ["neg", "pos"]
REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(neg|pos)/(\d+)_(\d+)\.txt$")
PER_SPLIT_AND_LABEL = 12_500


def read_reviews(
    archive: Path, per_label: int = PER_SPLIT_AND_LABEL
) -> dict[str, tuple[list[str], list[int]]]:
    """{"train"|"test": (texts, labels)} of a tar holding aclImdb/{train,test}/{neg,pos}/*.txt.

    Other members (the unlabelled `unsup/` reviews, `.feat` files) are skipped;
    the tar is streamed, so it is decompressed once and never extracted.
    """
    found: list[tuple[str, int, int, str]] = []
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            match = REVIEW.search(member.name)
            if match is None or not member.isfile():
                continue
            split, label, review_id, _rating = match.groups()
            text = tar.extractfile(member).read().decode("utf-8")
            found.append((split, int(review_id), CLASSES.index(label), text))
    found.sort(key=lambda review: review[:3])
    splits = {}
    for split in ("train", "test"):
        reviews = [r for r in found if r[0] == split]
        counts = [sum(r[2] == label for r in reviews) for label in range(len(CLASSES))]
        if counts != [per_label] * len(CLASSES):
            raise ConvrecError(
                f"{archive} holds {counts} {split} reviews per label (neg, pos), expected "
                f"{per_label} each; delete it and fetch the data again"
            )
        splits[split] = ([r[3] for r in reviews], [r[2] for r in reviews])
    return splits


@TASKS.register("imdb")
def imdb(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    fetched = fetch_archive(IMDB, raw_dir)
    (path,) = fetched.paths.values()
    splits = read_reviews(path)
    vocab, encoded = encode_splits(
        splits["train"][0],
        splits["test"][0],
        min_freq=int(cfg.min_freq),
        max_size=int(by_profile(cfg.max_vocab, cfg.profile)),
        max_len=int(by_profile(cfg.max_len, cfg.profile)),
    )
    (train_x, train_lengths), (test_x, test_lengths) = encoded["train"], encoded["test"]
    train_y, test_y = (torch.tensor(splits[s][1], dtype=torch.int64) for s in ("train", "test"))
    return RawSplits(
        train=Split(train_x, train_y, lengths=train_lengths),
        test=Split(test_x, test_y, lengths=test_lengths),
        input_kind="tokens",
        class_names=CLASSES,
        vocab=vocab.tokens,
        baseline={"value": 50.0, "what": "accuracy (%) of one class for every review"},
        sources=fetched.sources,
    )
