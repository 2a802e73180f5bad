from operator import attrgetter

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import CONF
from convrec.data.tasks import TASKS
from convrec.data.tasks.sort_of_clevr import (
    ANSWERS,
    COLOURS,
    HALF_SIZE,
    IMAGE_SIZE,
    NONREL,
    QUESTION_LENGTH,
    REL,
    VOCAB,
    Scene,
    answer,
    draw,
    encode,
    random_scene,
    samples,
)
from convrec.errors import ConvrecError
from convrec.lit import module_for
from convrec.lit.question_answering import QuestionAnsweringModule, group_key
from convrec.models import MODELS, build_model
from convrec.models.spec import IOSpec
from convrec.models.vqa_parts import QuestionEncoder

QA_MODELS = ("vqa_product", "vqa_concat", "question_lstm", "image_cnn", "relation_net")
SPEC = IOSpec(
    "image", (3, IMAGE_SIZE, IMAGE_SIZE), len(ANSWERS), vocab_size=len(VOCAB),
    question_length=QUESTION_LENGTH, class_names=tuple(ANSWERS),
    question_groups=(("nonrelational", VOCAB.index(NONREL)), ("relational", VOCAB.index(REL))),
)  # fmt: skip
RED, GREEN, BLUE, ORANGE, GRAY, YELLOW = range(6)
# Centres (x, y); squares: red, blue, orange, yellow (4), circles: green, gray (2).
SCENE = Scene(
    centres=np.array([[10, 10], [20, 10], [60, 60], [60, 15], [15, 60], [40, 40]]),
    squares=np.array([True, False, True, True, False, True]),
)


def _load(tmp_path, **settings):
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "task" / "sort_of_clevr.yaml"),
                          {"profile": "quick"}, settings)  # fmt: skip
    return TASKS.get("sort_of_clevr")(cfg, tmp_path)


def test_the_generator_is_deterministic_and_each_split_has_its_own_stream(tmp_path):
    small = {"train_images": 12, "test_images": 4, "questions_per_group": 2}
    a, b = _load(tmp_path, **small), _load(tmp_path, **small)
    other = _load(tmp_path, **small, generator_seed=1)
    for field in ("train.x", "train.question", "train.y", "test.x", "test.question", "test.y"):
        assert torch.equal(attrgetter(field)(a), attrgetter(field)(b))
        assert not torch.equal(attrgetter(field)(a), attrgetter(field)(other))
    assert a.train.x.shape == (12, 3, 75, 75) and a.train.x.dtype == torch.uint8
    assert a.train.question.shape == (12, 4, QUESTION_LENGTH) and a.test.y.shape == (4, 4)
    bigger = _load(tmp_path, **{**small, "train_images": 20})
    assert torch.equal(bigger.test.x, a.test.x) and torch.equal(bigger.train.y[:12], a.train.y)
    assert a.question_groups == {"nonrelational": 2, "relational": 3} and a.vocab == VOCAB


def test_answers_to_every_question_type_on_a_hand_made_scene():
    expected = {
        ("shape", RED): "rectangle", ("shape", GREEN): "circle",
        ("left", RED): "yes", ("left", BLUE): "no", ("left", YELLOW): "no",  # x = 40 > 37.5
        ("top", RED): "yes", ("top", GRAY): "no", ("top", ORANGE): "yes",
        ("closest", RED): "circle",  # green, 10 px away
        ("closest", BLUE): "rectangle",  # yellow (800) before orange and gray (2025 each)
        ("furthest", RED): "rectangle",  # blue (5000)
        ("furthest", ORANGE): "circle",  # gray (4050)
        ("count", RED): "4", ("count", GREEN): "2",  # itself included
    }  # fmt: skip
    for (subtype, colour), word in expected.items():
        assert ANSWERS[answer(SCENE, subtype, colour)] == word, (subtype, colour)


def test_the_drawing_puts_each_colour_at_its_centre_and_shapes_differ_at_the_corners():
    image = draw(SCENE)
    assert image.shape == (3, 75, 75) and image.dtype == np.uint8
    assert (image[:, 0, 0] == 255).all()  # white background
    for (x, y), square, rgb in zip(SCENE.centres, SCENE.squares, COLOURS.values(), strict=True):
        assert tuple(image[:, y, x]) == rgb
        corner = tuple(image[:, y + HALF_SIZE, x + HALF_SIZE])
        assert (corner == rgb) if square else corner == (255, 255, 255)


def test_questions_start_with_their_group_and_answers_fit_their_type():
    ids = encode(REL, "closest", RED)
    words = [VOCAB[i] for i in ids if i != 0]
    assert len(ids) == QUESTION_LENGTH
    assert words == [REL, *"what shape is the object closest to the red object".split()]
    x, question, y = samples(30, 3, np.random.default_rng(0))
    assert x.shape == (30, 3, 75, 75) and question.shape == (30, 6, QUESTION_LENGTH)
    question, y = question.flatten(0, 1), y.flatten()
    first = question[torch.arange(len(question)), (question != 0).int().argmax(1)]
    relational = first == VOCAB.index(REL)
    assert relational.sum() == 90 and (first[~relational] == VOCAB.index(NONREL)).all()
    assert relational.view(30, 6)[:, 3:].all()  # 3 non-relational, then 3 relational each
    assert y[~relational].max() <= 3 and y[relational].min() >= 2  # yes/no/shape; shape/count
    scene = random_scene(np.random.default_rng(5))
    gaps = ((scene.centres[:, None] - scene.centres[None]) ** 2).sum(-1) + 10**6 * np.eye(6)
    assert gaps.min() >= (2 * HALF_SIZE) ** 2
    assert scene.centres.min() >= HALF_SIZE and scene.centres.max() < IMAGE_SIZE - HALF_SIZE


def test_eighteen_questions_per_group_ask_every_colour_and_subtype_once():
    _, question, y = samples(2, 18, np.random.default_rng(1))
    for image in question:
        assert len({tuple(q.tolist()) for q in image}) == 36  # 2 groups x 3 subtypes x 6


@pytest.mark.parametrize("name", QA_MODELS)
def test_qa_models_answer_and_refuse_tasks_without_questions(name):
    model = build_model(name, SPEC).eval()
    image, _ = SPEC.example_inputs(3)
    image = torch.randn_like(image)
    asked = [encode(NONREL, "left", RED), encode(REL, "count", BLUE), encode(NONREL, "top", RED)]
    question = torch.tensor(asked)[None].expand(3, -1, -1)  # 3 images x 3 questions
    answers = model(image, question)
    assert answers.shape == (3, 3, len(ANSWERS))
    # Each question is answered as if asked alone: the image is shared, not the questions.
    for k in range(3):
        alone = model(image, question[:, k : k + 1])
        torch.testing.assert_close(alone[:, 0], answers[:, k], rtol=1e-4, atol=1e-5)
    assert MODELS.get(name).family == {"question_lstm": "rnn", "image_cnn": "cnn"}.get(
        name, "hybrid"
    )
    with pytest.raises(ConvrecError, match="answers questions about images"):
        build_model(name, IOSpec("image", (1, 28, 28), 10))


def test_question_states_are_standardised_across_distinct_questions_in_training():
    encoder = QuestionEncoder(SPEC).train()
    asked = [encode(NONREL, "left", c) for c in range(6)] + [encode(REL, "count", RED)]
    question = torch.tensor(asked)[None].expand(2, -1, -1)  # 2 images, the same 7 questions
    state = encoder(question)[0]  # each distinct question once, as the norm sees them
    torch.testing.assert_close(state.mean(0), torch.zeros(128), atol=1e-5, rtol=0)
    # a batch with a single distinct question has nothing to standardise: running stats
    one = encoder(torch.tensor([[asked[0]]]))
    assert torch.isfinite(one).all() and one.abs().sum() > 0


def test_relations_start_at_zero_so_the_relation_net_starts_as_the_product_model():
    torch.manual_seed(0)
    model = build_model("relation_net", SPEC).eval()
    image, _ = SPEC.example_inputs(2)
    objects = model.cells(model.image(torch.randn_like(image)))
    first = model.g_i(objects)[:, :, None] + model.g_j(objects)[:, None, :]
    assert model.g_rest(first + model.g_geometry(model.geometry)).abs().max() == 0


class Fixed(nn.Module):
    """Predicts the class given per sample."""

    def __init__(self, predictions: list[int]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.eye(len(ANSWERS))[predictions])

    def forward(self, image, question):
        return self.logits.view(*question.shape[:2], -1)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # no Trainer here
def test_the_qa_module_scores_each_question_group():
    rel, nonrel = encode(REL, "count", RED), encode(NONREL, "top", BLUE)
    question = torch.tensor([[rel, rel, rel, nonrel, nonrel]])  # one image, 5 questions
    y = torch.tensor([[7, 5, 2, 0, 1]])
    predictions = [7, 5, 3, 0, 0]  # relational 2 of 3, non-relational 1 of 2
    assert module_for(SPEC) is QuestionAnsweringModule
    module = module_for(SPEC)(Fixed(predictions), SPEC, torch.optim.SGD)
    module._step([torch.zeros(1, 3, 75, 75), question, y], "test")
    scores = {name: module.running_mean("test", group_key(name))
              for name in ("relational", "nonrelational")}  # fmt: skip
    assert scores == pytest.approx({"relational": 2 / 3, "nonrelational": 1 / 2})
    assert module.running_mean("test", "acc") == pytest.approx(3 / 5)
