"""Sort-of-CLEVR (Santoro et al. 2017, A simple neural network module for relational reasoning;
generator: kimhc6028/relational-networks sort_of_clevr_generator.py), drawn with numpy.

Each 75x75 image holds six objects of distinct colours, each a square or a circle of
half-size 5, at random centres at least 10 pixels apart. Each image gets questions about
one colour's object: non-relational (its shape; is it on the left; is it on the top) and
relational (the shape of the object closest to it; of the one furthest from it; how many
objects share its shape). Answers are one of 10 classes.

Santoro et al. encode a question as a one-hot vector; here it is a short sentence of
tokens, read by an LSTM, left-padded to a fixed length (an LSTM's final state then sits on
the last word). Its first word is "<rel>" or "<nonrel>", as Santoro's vector carries a
relational flag; the QA module scores each group by that token (`question_groups`).

A sample is one image with all its questions and answers, as Santoro's generator stores
them: the image is stored and encoded once, and every question about it is answered from
that one encoding. On a CPU the image CNN is most of a step's cost, so a pass over all of
an image's questions (36 in the quick profile) costs little more than over one; the validation
split is carved by image, so no validation image is seen in training. Each split comes from
its own numpy stream, `default_rng([generator_seed, split])`, drawn image by image, so the
test set does not change when the training set grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from convrec.data.contract import PAD, UNK, RawSplits, Split
from convrec.data.tasks import TASKS, by_profile, split_rng
from convrec.errors import ConvrecError

IMAGE_SIZE, HALF_SIZE = 75, 5  # Santoro's img_size and object size
COLOURS = {  # RGB; Santoro's order: red, green, blue, orange, gray, yellow
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}
SHAPES = ("square", "circle")  # Santoro's 'r' (rectangle) and 'c'
ANSWERS = ["yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6"]
YES, NO, RECTANGLE = 0, 1, 2  # circle is RECTANGLE + 1; count c is class 3 + c
NONREL, REL = "<nonrel>", "<rel>"
QUESTIONS = {  # (group, subtype) -> template; {} is the colour
    (NONREL, "shape"): "what shape is the {} object",
    (NONREL, "left"): "is the {} object on the left",
    (NONREL, "top"): "is the {} object on the top",
    (REL, "closest"): "what shape is the object closest to the {} object",
    (REL, "furthest"): "what shape is the object furthest from the {} object",
    (REL, "count"): "how many objects have the shape of the {} object",
}
SUBTYPES = {group: [s for g, s in QUESTIONS if g == group] for group in (NONREL, REL)}
WORDS = sorted({w for t in QUESTIONS.values() for w in t.split() if w != "{}"} | set(COLOURS))
VOCAB = [PAD, UNK, NONREL, REL, *WORDS]
QUESTION_LENGTH = 1 + max(len(t.split()) for t in QUESTIONS.values())


@dataclass(frozen=True)
class Scene:
    """Object i has colour i (COLOURS' order), centre (x, y) in pixels, and shape."""

    centres: np.ndarray  # (6, 2) int64: x (column), y (row)
    squares: np.ndarray  # (6,) bool: True for a square, False for a circle


def random_scene(rng: np.random.Generator) -> Scene:
    """Santoro's center_generate: draw centres until one is 2 * size from all placed so far."""
    centres: list[np.ndarray] = []
    squares = []
    for _ in COLOURS:
        while True:
            centre = rng.integers(HALF_SIZE, IMAGE_SIZE - HALF_SIZE, size=2)
            if all(((centre - c) ** 2).sum() >= (2 * HALF_SIZE) ** 2 for c in centres):
                break
        centres.append(centre)
        squares.append(rng.random() < 0.5)
    return Scene(np.stack(centres).astype(np.int64), np.array(squares))


def draw(scene: Scene) -> np.ndarray:
    """(3, 75, 75) uint8: white background; filled 11x11 squares, circles of radius 5."""
    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8)
    rows, cols = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    objects = zip(scene.centres, scene.squares, COLOURS.values(), strict=True)
    for (x, y), square, colour in objects:
        dx, dy = cols - x, rows - y
        if square:
            mask = (np.abs(dx) <= HALF_SIZE) & (np.abs(dy) <= HALF_SIZE)
        else:
            mask = dx**2 + dy**2 <= HALF_SIZE**2
        image[mask] = colour
    return image.transpose(2, 0, 1)


def answer(scene: Scene, subtype: str, colour: int) -> int:
    """The class index of the answer, as sort_of_clevr_generator.py computes it."""

    def shape_of(i: int) -> int:
        return RECTANGLE if scene.squares[i] else RECTANGLE + 1

    x, y = scene.centres[colour]
    if subtype == "shape":
        return shape_of(colour)
    if subtype in ("left", "top"):  # "left": x < 37.5; "top": y < 37.5 (row 0 is the top)
        return YES if (x if subtype == "left" else y) < IMAGE_SIZE / 2 else NO
    distances = ((scene.centres - scene.centres[colour]) ** 2).sum(1).astype(np.float64)
    if subtype == "closest":
        distances[colour] = np.inf  # not itself; ties go to the first colour, as index() does
        return shape_of(int(np.argmin(distances)))
    if subtype == "furthest":
        return shape_of(int(np.argmax(distances)))
    if subtype == "count":  # objects of its shape, itself included: 1..6
        return 3 + int((scene.squares == scene.squares[colour]).sum())
    raise ValueError(f"unknown question subtype {subtype!r}")


def encode(group: str, subtype: str, colour: int) -> list[int]:
    """Token ids of one question, left-padded with <pad> to QUESTION_LENGTH."""
    words = [group, *QUESTIONS[group, subtype].format(list(COLOURS)[colour]).split()]
    ids = [VOCAB.index(w) for w in words]
    return [0] * (QUESTION_LENGTH - len(ids)) + ids


def samples(n_images: int, per_group: int, rng: np.random.Generator):
    """`per_group` non-relational, then `per_group` relational questions about each of
    `n_images` scenes (Santoro: 10 and 10), each of a random colour and subtype, no two
    alike (18 asks all of a group's questions).
    Returns images (n, 3, 75, 75) uint8, questions (n, k, Q) int64 and answers (n, k) int64,
    n = n_images, k = 2 * per_group."""
    images, questions, answers = [], [], []
    for _ in range(n_images):
        scene = random_scene(rng)
        images.append(draw(scene))
        questions.append([])
        answers.append([])
        for group in (NONREL, REL):
            # distinct (subtype, colour) pairs; Santoro draws with replacement
            for pair in rng.permutation(len(SUBTYPES[group]) * len(COLOURS))[:per_group]:
                subtype, colour = SUBTYPES[group][pair // len(COLOURS)], int(pair % len(COLOURS))
                questions[-1].append(encode(group, subtype, colour))
                answers[-1].append(answer(scene, subtype, colour))
    return (
        torch.from_numpy(np.stack(images)),
        torch.tensor(questions, dtype=torch.int64),
        torch.tensor(answers, dtype=torch.int64),
    )


@TASKS.register("sort_of_clevr")
def sort_of_clevr(cfg: DictConfig, raw_dir: Path) -> RawSplits:
    train = int(by_profile(cfg.train_images, cfg.profile))
    test = int(by_profile(cfg.test_images, cfg.profile))
    per_group = int(by_profile(cfg.questions_per_group, cfg.profile))
    if train < 1 or test < 1 or per_group < 1:
        raise ConvrecError(
            f"task {cfg.name}: train_images={train}, test_images={test}, "
            f"questions_per_group={per_group} must all be >= 1 in conf/task/{cfg.name}.yaml"
        )
    seed = int(cfg.generator_seed)
    train_x, train_q, train_y = samples(train, per_group, split_rng(seed, "train"))
    test_x, test_q, test_y = samples(test, per_group, split_rng(seed, "test"))
    return RawSplits(
        train=Split(train_x, train_y, question=train_q),
        test=Split(test_x, test_y, question=test_q),
        input_kind="image",
        class_names=ANSWERS,
        vocab=VOCAB,
        question_groups={"nonrelational": VOCAB.index(NONREL), "relational": VOCAB.index(REL)},
        generator={
            "train_images": train,
            "test_images": test,
            "questions_per_group": per_group,
            "generator_seed": seed,
            "streams": "numpy default_rng([generator_seed, 0]) train, [generator_seed, 1] test",
        },
    )
