"""Slot filling: flight-booking requests with a BIO tag per word (in the style of ATIS).

Each utterance is a template whose slots are filled from small lists (cities, dates,
times, airlines, fare classes). The same city can be the origin or the destination,
and the same date the departure or the return: only the words around it decide,
and the deciding cue often comes after the slot ("taipei is where i leave from",
"boston to denver"). A model that reads left to right must tag such a word before
it has seen its cue; one that also reads right to left need not.

Training templates come from a small grammar (an intro, then each slot asked for by
one of its cue phrases, in random order); the test split's templates are whole
sentences written by hand from the same cues, and the grammar is never allowed to
produce one of them. The score is generalisation to new sentences, not recall of
the training ones. Each split draws from its own numpy stream,
`default_rng([generator_seed, split])`, so the test set does not change when the
training set grows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from seqeval.metrics import f1_score

from convrec.data.contract import RawSplits, Split
from convrec.data.tasks import TASKS, by_profile, split_rng
from convrec.data.text import Vocabulary, pad_ids
from convrec.errors import ConvrecError
from convrec.targets import TARGET_PAD

SLOTS = ("origin", "destination", "depart_date", "return_date", "depart_time", "airline",
         "fare_class")  # fmt: skip
TAGS = ["O", *(f"{bio}-{slot}" for slot in SLOTS for bio in ("B", "I"))]

CITIES = [
    "taipei", "boston", "denver", "seattle", "chicago", "dallas", "atlanta", "miami", "tokyo",
    "london", "paris", "toronto", "new york", "san francisco", "los angeles", "salt lake city",
    "las vegas", "hong kong", "kuala lumpur", "washington",
]  # fmt: skip
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]  # fmt: skip


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


ORDINALS = [_ordinal(day) for day in range(1, 29)]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DATES = [
    *(f"{month} {day}" for month in MONTHS for day in ORDINALS),
    *(f"the {day} of {month}" for month in MONTHS for day in ORDINALS),
    *WEEKDAYS,
    *(f"next {day}" for day in WEEKDAYS),
    "tomorrow", "today",
]  # fmt: skip
TIMES = [
    *(f"{hour} {half}" for hour in range(1, 13) for half in ("am", "pm")),
    *(f"{hour} thirty {half}" for hour in range(1, 13) for half in ("am", "pm")),
    "noon", "midnight",
]  # fmt: skip
AIRLINES = ["united", "delta", "american airlines", "eva air", "china airlines", "jetblue",
            "lufthansa", "air canada", "british airways", "alaska airlines"]  # fmt: skip
FARE_CLASSES = ["economy", "business class", "first class", "premium economy", "coach"]
FILLERS = {"origin": CITIES, "destination": CITIES, "depart_date": DATES, "return_date": DATES,
           "depart_time": TIMES, "airline": AIRLINES, "fare_class": FARE_CLASSES}  # fmt: skip

# How a slot is asked for: the cue before the slot, or after it. Origin and destination share
# their fillers (and so do the two dates), so for them only the cue tells which slot it is.
PHRASES = {
    "origin": ["from {origin}", "leaving {origin}", "out of {origin}", "departing from {origin}",
               "{origin} is where i leave from", "{origin} is my starting point",
               "{origin} is where i depart", "{origin} is where i am flying out of"],
    "destination": ["to {destination}", "arriving in {destination}", "headed to {destination}",
                    "going to {destination}", "{destination} is where i am going",
                    "{destination} is my destination", "{destination} is where i want to land",
                    "{destination} is where i need to be"],
    "depart_date": ["on {depart_date}", "leaving on {depart_date}", "departing {depart_date}",
                    "{depart_date} is when i leave", "{depart_date} is my departure day"],
    "return_date": ["returning on {return_date}", "coming back {return_date}",
                    "return on {return_date}", "{return_date} is when i come back",
                    "{return_date} is my return day"],
    "depart_time": ["at {depart_time}", "around {depart_time}", "leaving at {depart_time}"],
    "airline": ["on {airline}", "with {airline}", "{airline} flights"],
    "fare_class": ["in {fare_class}", "{fare_class} seats", "a {fare_class} ticket"],
}  # fmt: skip
# Origin and destination asked for together: the cue is the word between them.
PAIRS = ["{origin} to {destination}", "{destination} from {origin}"]
INTROS = ["", "i want to fly", "show me flights", "i need a flight", "book a trip",
          "is there a flight", "please find me a ticket", "what flights go"]  # fmt: skip
CONNECTORS = [" ", " , ", " and "]
ROUTE = ("origin", "destination")  # in every utterance
OPTIONAL_SLOT = 0.35  # the chance of each other slot
PAIR_CHANCE = 0.25  # the chance that the route is asked for as a pair

# The test split's templates: whole sentences written by hand from the same cues. Training
# templates come from the grammar above, which could produce a few of these; it is redrawn
# when it does, so no test template is ever seen in training.
TEST_TEMPLATES = [
    "on {depart_date} i want to fly from {origin} to {destination}",
    "{destination} is where i am going and {origin} is where i leave from",
    "{origin} is my starting point , i am headed to {destination} on {airline}",
    "i am flying to {destination} and {origin} is where i depart",
    "leaving {origin} at {depart_time} , {destination} is my destination",
    "{destination} is where i want to land , leaving on {depart_date} from {origin}",
    "a {fare_class} ticket on {airline} from {origin} to {destination} please",
    "{origin} to {destination} on {depart_date} returning on {return_date}",
    "{depart_date} is when i leave and {return_date} is when i come back",
    "{destination} is where i need to be and i fly out of {origin} on {depart_date}",
    "show me {airline} flights to {destination} from {origin} around {depart_time}",
    "{origin} is where i am flying out of and {destination} is where i am going",
    "{destination} from {origin} in {fare_class} coming back {return_date}",
    "i need {fare_class} seats leaving {origin} arriving in {destination}",
    "what flights go from {origin} to {destination} , {return_date} is my return day",
    "{depart_date} is my departure day , i want to fly out of {origin} to {destination}",
]


def _pick(options: list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def training_template(rng: np.random.Generator) -> str:
    """An intro, then origin, destination and a random few other slots, each asked for by a
    random cue, in random order, joined by random connectors; never a test template."""
    while True:
        slots = [s for s in PHRASES if s in ROUTE or rng.random() < OPTIONAL_SLOT]
        phrases = [_pick(PHRASES[slot], rng) for slot in slots]
        if rng.random() < PAIR_CHANCE:
            phrases[:2] = [_pick(PAIRS, rng)]  # origin and destination come first in PHRASES
        template = _pick(INTROS, rng)
        for i in rng.permutation(len(phrases)):
            template += (_pick(CONNECTORS, rng) if template else "") + phrases[i]
        if template not in TEST_TEMPLATES:
            return template


def tag_template(template: str, fillers: dict[str, str]) -> tuple[list[str], list[str]]:
    """The words of a filled template and their BIO tags: B- on a slot's first word, I- on
    the rest, O elsewhere."""
    words, tags = [], []
    for part in template.split():
        if part.startswith("{"):
            slot = part[1:-1]
            filler = fillers[slot].split()
            words += filler
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(filler) - 1)
        else:
            words.append(part)
            tags.append("O")
    return words, tags


def utterances(n: int, split: str, rng: np.random.Generator):
    """`n` filled templates of a split: (words, tags) pairs. Utterance i draws from the stream
    only after utterance i - 1, so a longer run only appends utterances."""
    samples = []
    for _ in range(n):
        template = training_template(rng) if split == "train" else _pick(TEST_TEMPLATES, rng)
        picks = {slot: int(rng.integers(len(pool))) for slot, pool in FILLERS.items()}
        # The destination is another city than the origin.
        if picks["destination"] == picks["origin"]:
            picks["destination"] = (picks["origin"] + 1) % len(CITIES)
        fillers = {slot: FILLERS[slot][i] for slot, i in picks.items()}
        samples.append(tag_template(template, fillers))
    return samples


def majority_tag_f1(train: list, test: list) -> float:
    """Slot F1 (%) of tagging each test word with its most frequent tag in training (O when
    unseen), the CoNLL baseline: it knows the fillers, but not which slot the context gives."""
    counts: dict[str, Counter] = {}
    for words, tags in train:
        for word, tag in zip(words, tags, strict=True):
            counts.setdefault(word, Counter())[tag] += 1
    guess = {word: c.most_common(1)[0][0] for word, c in counts.items()}
    predicted = [[guess.get(word, "O") for word in words] for words, _ in test]
    return 100.0 * f1_score([tags for _, tags in test], predicted)


def _encode(samples: list, vocab: Vocabulary, width: int) -> tuple[torch.Tensor, ...]:
    ids, lengths = pad_ids([vocab.encode(words, len(words)) for words, _ in samples], width)
    tag_ids, _ = pad_ids([[TAGS.index(t) for t in tags] for _, tags in samples], width)
    real = torch.arange(width)[None, :] < lengths[:, None]
    return ids, lengths, tag_ids.masked_fill(~real, TARGET_PAD)  # no tag on padding


@TASKS.register("slot_filling")
def slot_filling(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train_size = int(by_profile(cfg.train_size, cfg.profile))
    test_size = int(by_profile(cfg.test_size, cfg.profile))
    if train_size < 2 or test_size < 1:
        raise ConvrecError(
            f"task {cfg.name}: train_size={train_size}, test_size={test_size} are too small; "
            f"set train_size >= 2 and test_size >= 1 in conf/task/{cfg.name}.yaml"
        )
    seed = int(cfg.generator_seed)
    train = utterances(train_size, "train", split_rng(seed, "train"))
    test = utterances(test_size, "test", split_rng(seed, "test"))
    # From train only: a word that only the test templates use is <unk>.
    vocab = Vocabulary.build((words for words, _ in train), min_freq=1, max_size=10**6)
    width = max(len(words) for words, _ in train + test)
    train_x, train_lengths, train_y = _encode(train, vocab, width)
    test_x, test_lengths, test_y = _encode(test, vocab, width)
    return RawSplits(
        train=Split(train_x, train_y, lengths=train_lengths),
        test=Split(test_x, test_y, lengths=test_lengths),
        input_kind="tokens",
        class_names=TAGS,
        target_kind="tags",
        vocab=vocab.tokens,
        normalize=False,
        baseline={
            "value": majority_tag_f1(train, test),
            "what": "slot F1 (%) of tagging each word with its most frequent training tag",
        },
        generator={
            "train_size": train_size,
            "test_size": test_size,
            "generator_seed": seed,
            "train_templates": "a grammar of cue phrases (slot_filling.training_template)",
            "test_templates": len(TEST_TEMPLATES),
            "streams": "numpy default_rng([generator_seed, 0]) train, [generator_seed, 1] test",
        },
    )
