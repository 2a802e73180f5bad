"""Text to token ids: one tokenizer and one vocabulary for every text task.

The tokenizer is deliberately plain, so that a reader can predict its output:
lowercase, IMDB's `<br />` line breaks become spaces, then a word is a run of
letters or digits (apostrophes inside it kept: "don't", "n't"), and every other
non-space character is a token of its own ("!!" is two tokens, and "<pad>"
could only ever be "<", "pad", ">", never the special token). The vocabulary is
built from the training split only, so no test word leaks in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from convrec.data.contract import PAD, UNK
from convrec.errors import ConvrecError

LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")
PAD_ID, UNK_ID = 0, 1


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(LINE_BREAK.sub(" ", text.lower()))


class Vocabulary:
    """id -> token (`tokens`) and back; id 0 is padding, id 1 every unknown word."""

    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}")
        self.tokens = list(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[list[str]], min_freq: int, max_size: int) -> Vocabulary:
        """The `max_size - 2` most frequent tokens seen at least `min_freq` times.

        `max_size` counts the two special ids, so it is the embedding table's size.
        Ties break alphabetically, so the same texts give the same ids.
        """
        if min_freq < 1 or max_size < 3:
            raise ConvrecError(
                f"vocabulary min_freq={min_freq} and max_size={max_size} must be >= 1 and >= 3; "
                f"fix them in the task's yaml"
            )
        counts = Counter(token for tokens in texts for token in tokens)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls([PAD, UNK, *kept[: max_size - 2]])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str], max_len: int) -> list[int]:
        """The first `max_len` tokens as ids; an empty text becomes one <unk>."""
        ids = [self.ids.get(token, UNK_ID) for token in tokens[:max_len]]
        return ids or [UNK_ID]


def pad_ids(
    sequences: Sequence[list[int]], width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, width) int64 ids right-padded with PAD_ID, and (N,) int64 lengths.

    `width` defaults to the longest sequence; give one to pad several splits alike.
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max(initial=1)) if width is None else width
    ids = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    for row, sequence in zip(ids, sequences, strict=True):
        row[: len(sequence)] = sequence
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def encode_splits(
    train_texts: Sequence[str],
    test_texts: Sequence[str],
    min_freq: int,
    max_size: int,
    max_len: int,
) -> tuple[Vocabulary, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Tokenize both splits, build the vocabulary from train, and pad both to the same width."""
    if max_len < 1:
        raise ConvrecError(f"max_len={max_len} must be >= 1; fix it in the task's yaml")
    train_tokens = [tokenize(text) for text in train_texts]
    vocab = Vocabulary.build(train_tokens, min_freq, max_size)
    encoded = {
        "train": [vocab.encode(tokens, max_len) for tokens in train_tokens],
        "test": [vocab.encode(tokenize(text), max_len) for text in test_texts],
    }
    width = max(len(ids) for split in encoded.values() for ids in split)
    return vocab, {name: pad_ids(split, width) for name, split in encoded.items()}
