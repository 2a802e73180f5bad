from operator import attrgetter

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF
from convrec.data.tasks import TASKS
from convrec.data.tasks.slot_filling import (
    PHRASES,
    TAGS,
    TEST_TEMPLATES,
    majority_tag_f1,
    tag_template,
    training_template,
)
from convrec.errors import ConvrecError
from convrec.lit.tagging import SlotF1, TaggingModule
from convrec.models import build_model
from convrec.models.spec import IOSpec

TAGGERS = ["lstm", "bilstm", "cnn_tagger", "cnn_bilstm"]
SPEC = IOSpec("tokens", (12,), len(TAGS), target_kind="tags", vocab_size=40,
              variable_length=True, class_names=tuple(TAGS))  # fmt: skip


def _load(tmp_path, **settings):
    small = {"profile": "quick", "train_size": 60, "test_size": 20}
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "task" / "slot_filling.yaml"), small, settings)
    return TASKS.get("slot_filling")(cfg, tmp_path / "raw")


def test_the_generator_is_deterministic_under_its_seed(tmp_path):
    a, b, c = _load(tmp_path), _load(tmp_path), _load(tmp_path, generator_seed=1)
    for field in ("train.x", "train.y", "test.x", "test.y", "train.lengths", "test.lengths"):
        assert torch.equal(attrgetter(field)(a), attrgetter(field)(b))
    assert a.vocab == b.vocab and not torch.equal(a.train.y, c.train.y)
    # The test split has its own stream: a bigger training set leaves its tags alone.
    bigger = _load(tmp_path, train_size=120)
    assert torch.equal(bigger.test.y[:, : a.test.y.shape[1]], a.test.y)
    assert torch.equal(bigger.test.lengths, a.test.lengths)


def test_splits_hold_a_tag_per_token_and_none_on_padding(tmp_path):
    raw = _load(tmp_path)
    assert raw.input_kind == "tokens" and raw.target_kind == "tags" and raw.class_names == TAGS
    assert raw.vocab[:2] == ["<pad>", "<unk>"]
    for x, y, lengths in ((raw.train.x, raw.train.y, raw.train.lengths),
                          (raw.test.x, raw.test.y, raw.test.lengths)):  # fmt: skip
        assert x.shape == y.shape and x.dtype == y.dtype == torch.int64
        real = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        assert (x[~real] == 0).all() and (y[~real] == -1).all()
        assert (x[real] > 0).all() and (y[real] >= 0).all() and (y[real] < len(TAGS)).all()


@pytest.mark.parametrize(
    ("template", "fillers", "tags"),
    [
        # The cue after the slot: only "is where i leave from" makes new york the origin.
        ("{origin} is where i leave from", {"origin": "new york"},
         ["B-origin", "I-origin", "O", "O", "O", "O", "O"]),
        ("{origin} to {destination}", {"origin": "taipei", "destination": "salt lake city"},
         ["B-origin", "O", "B-destination", "I-destination", "I-destination"]),
        ("fly on {airline} {depart_date} at {depart_time}",
         {"airline": "eva air", "depart_date": "november 2nd", "depart_time": "9 pm"},
         ["O", "O", "B-airline", "I-airline", "B-depart_date", "I-depart_date", "O",
          "B-depart_time", "I-depart_time"]),
    ],
)  # fmt: skip
def test_templates_are_tagged_in_bio(template, fillers, tags):
    words, got = tag_template(template, fillers)
    assert len(words) == len(got) and got == tags
    if template.startswith("{origin} is"):
        assert words == "new york is where i leave from".split()


def test_no_test_template_is_a_training_template():
    rng = np.random.default_rng(0)
    drawn = {training_template(rng) for _ in range(3000)}
    assert not drawn & set(TEST_TEMPLATES)
    assert len(drawn) > 1000  # the grammar gives many templates, not a handful
    # Every cue of the grammar comes up, before its slot and after it.
    for slot, cues in PHRASES.items():
        for cue in cues:
            assert any(cue in template for template in drawn), (slot, cue)


def test_slot_f1_counts_whole_entities():
    # Three true entities (origin "new york", destination "boston", date); predicted: the
    # origin cut short (a miss), the destination right, the date right, plus a spurious
    # airline. Precision 2/4, recall 2/3, F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7.
    names = ("O", "B-origin", "I-origin", "B-destination", "B-depart_date", "B-airline")
    true = torch.tensor([[1, 2, 0, 3, -1], [4, 0, 0, -1, -1]])
    pred = torch.tensor([[1, 0, 0, 3, 3], [4, 0, 5, 1, 1]])  # padding predictions are ignored
    metric = SlotF1(names)
    for row in range(2):  # two batches: states accumulate
        metric.update(torch.nn.functional.one_hot(pred[row : row + 1], 6).float(),
                      true[row : row + 1])  # fmt: skip
    assert metric.compute().item() == pytest.approx(4 / 7)


def test_the_majority_baseline_cannot_tell_origin_from_destination():
    train = [tag_template("from {origin} to {destination}", {"origin": "a", "destination": "b"})]
    test = [tag_template("{origin} to {destination}", {"origin": "b", "destination": "a"})]
    assert majority_tag_f1(train, test) == 0.0  # b is a destination in training, a an origin
    assert majority_tag_f1(train, train) == 100.0


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # no Trainer here
def test_the_loss_ignores_padding():
    net = build_model("lstm", SPEC)
    module = TaggingModule(net, SPEC, optimizer=torch.optim.SGD)
    logits = torch.randn(2, 4, len(TAGS))
    y = torch.tensor([[1, 2, 0, -1], [3, -1, -1, -1]])
    loss = module.compute(logits, y, "val")
    changed = logits.clone()
    changed[y == -1] = 100.0  # whatever the model says on padding
    assert module.compute(changed, y, "val").item() == pytest.approx(loss.item())
    real = y != -1
    expected = torch.nn.functional.cross_entropy(logits[real], y[real])
    assert loss.item() == pytest.approx(expected.item())


def _batch(generator):
    lengths = torch.tensor([12, 3, 7, 1])
    x = torch.randint(2, SPEC.vocab_size, (4, 12), generator=generator)
    return x * (torch.arange(12) < lengths[:, None]), lengths


@pytest.mark.parametrize("name", TAGGERS)
def test_taggers_give_a_tag_per_token_that_padding_never_changes(name):
    torch.manual_seed(0)
    model = build_model(name, SPEC).eval()
    x, lengths = _batch(torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = model(x, lengths)
        assert batched.shape == (4, 12, len(TAGS))
        for i, length in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, :length], lengths[i : i + 1])
            torch.testing.assert_close(alone, batched[i : i + 1, :length], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["cnn_tagger", "cnn_bilstm"])
def test_taggers_refuse_one_label_per_sequence(name):
    with pytest.raises(ConvrecError, match="predicts steps or tags targets, and the task wants a"):
        build_model(name, IOSpec("tokens", (12,), 2, vocab_size=40, variable_length=True))


@pytest.mark.parametrize("name", ["textcnn", "cnn_lstm", "fcn"])
def test_pooling_models_refuse_tags(name):
    with pytest.raises(ConvrecError, match="the task wants a tag per token"):
        build_model(name, SPEC)
