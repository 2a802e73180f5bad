"""1-D convolutional sequence models: shapes, padding invariance, TCN causality, bad specs."""

from __future__ import annotations

import pytest
import torch

from convrec.errors import ConvrecError
from convrec.models import MODELS, build_model
from convrec.models.spec import IOSpec

UNI = IOSpec("sequence", (1, 150), 2)  # GunPoint-like
MULTI = IOSpec("sequence", (12, 29), 9, variable_length=True)  # Japanese-vowels-like
TOKENS = IOSpec("tokens", (40,), 2, vocab_size=50, variable_length=True)
STEPS = IOSpec("sequence", (3, 30), 5, target_kind="steps", variable_length=True)
VALUE = IOSpec("sequence", (2, 50), 0, target_kind="value", variable_length=True)  # adding

SMALL = {  # small widths keep the tests fast
    "tcn": {"channels": [8, 8, 6], "kernel_size": 3, "embed_dim": 8},
    "fcn": {"channels": [8, 12, 8], "embed_dim": 8},
    "resnet1d": {"channels": [8, 12, 12], "embed_dim": 8},
    "textcnn": {"filters": 6, "embed_dim": 8},
    "lstm_fcn": {"channels": [8, 12, 8], "hidden_size": 4, "embed_dim": 8},
}
SUMMARY = ["fcn", "resnet1d", "textcnn", "lstm_fcn"]
CASES = [(name, spec) for name in SMALL for spec in (UNI, MULTI, TOKENS)] + [
    ("tcn", STEPS),
    ("tcn", VALUE),
]
IDS = ["uni", "multi", "tokens", "steps", "value"]
CASE_IDS = [f"{name}-{IDS[[UNI, MULTI, TOKENS, STEPS, VALUE].index(s)]}" for name, s in CASES]


def build(name: str, spec: IOSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, spec, **SMALL[name]).eval()


def expected_shape(spec: IOSpec, n: int, steps: int) -> tuple[int, ...]:
    return {"class": (n, spec.num_classes), "steps": (n, steps, spec.num_classes), "value": (n,)}[
        spec.target_kind
    ]


def padded_batch(spec: IOSpec, lengths: list[int], steps: int) -> torch.Tensor:
    """Random sequences with junk after each length (models must ignore whatever is there)."""
    if spec.input_kind == "tokens":
        return torch.randint(1, spec.vocab_size, (len(lengths), steps))
    return torch.randn(len(lengths), spec.channels, steps)


def pad_to(x: torch.Tensor, steps: int) -> torch.Tensor:
    extra = steps - x.shape[-1]
    junk = torch.randint_like(x[..., :1].expand(*x.shape[:-1], extra), 1, 9)
    return torch.cat([x, junk], dim=-1)


@pytest.mark.parametrize(("name", "spec"), CASES, ids=CASE_IDS)
def test_output_shapes(name, spec):
    model = build(name, spec)
    lengths = torch.tensor([spec.steps, 3]) if spec.variable_length else None
    x = padded_batch(spec, [spec.steps, 3], spec.steps)
    out = model(x) if lengths is None else model(x, lengths)
    assert out.shape == expected_shape(spec, 2, spec.steps)
    assert torch.isfinite(out).all()
    assert MODELS.get(name).family == ("hybrid" if name == "lstm_fcn" else "cnn")


@pytest.mark.parametrize(
    ("name", "spec"),
    [case for case in CASES if case[1].variable_length],
    ids=[i for i, case in zip(CASE_IDS, CASES, strict=True) if case[1].variable_length],
)
def test_padding_never_changes_a_prediction(name, spec):
    torch.manual_seed(1)
    model = build(name, spec)
    steps = spec.steps
    lengths = [steps, steps - 5, 7, 2, 1]
    x = padded_batch(spec, lengths, steps)
    with torch.no_grad():
        out = model(x, torch.tensor(lengths))
        longer = model(pad_to(x, steps + 13), torch.tensor(lengths))
        for i, length in enumerate(lengths):
            alone = model(x[i : i + 1, ..., :length], torch.tensor([length]))
            if spec.target_kind == "steps":  # only the real steps carry labels
                assert torch.allclose(out[i : i + 1, :length], alone, atol=1e-5)
                assert torch.allclose(longer[i : i + 1, :length], alone, atol=1e-5)
            else:
                assert torch.allclose(out[i : i + 1], alone, atol=1e-5), (i, length)
                assert torch.allclose(longer[i : i + 1], alone, atol=1e-5), (i, length)


def test_tcn_is_causal():
    model = build("tcn", STEPS)
    x = torch.randn(3, 3, 30)
    changed = x.clone()
    changed[:, :, 17] += 1.0
    with torch.no_grad():
        before, after = model(x), model(changed)
    assert torch.equal(before[:, :17], after[:, :17])
    assert not torch.allclose(before[:, 17], after[:, 17])


def test_tcn_receptive_field_matches_the_formula():
    # Seeded: the oldest step reaches the output through one path of ReLUs, which a random
    # init can leave dead for all 8 samples (a zero gradient though inside the field).
    torch.manual_seed(0)
    model = build_model("tcn", UNI, channels=[4, 4, 4, 4], kernel_size=3, dropout=0.0).double()
    field = 1 + 2 * (3 - 1) * (2**4 - 1)
    assert model.receptive_field == field == 61
    x = torch.randn(8, 1, 100, dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()  # class output: read at the last step
    seen = (x.grad.abs().sum(dim=(0, 1)) != 0).nonzero().flatten()
    assert seen.min().item() == 100 - field and seen.max().item() == 99
    assert build_model("tcn", UNI).receptive_field == 757  # the defaults


def test_textcnn_reads_sequences_shorter_than_its_widest_filter():
    model = build("textcnn", UNI)
    x = torch.randn(4, 1, 3)
    assert model(x).shape == (4, 2)
    with torch.no_grad():  # no lengths: all 3 steps are real, the zero fill is not
        assert torch.allclose(model(x), model(x, torch.tensor([3] * 4)), atol=1e-6)
    tokens = build("textcnn", TOKENS)
    assert tokens(torch.randint(0, 50, (2, 2)), torch.tensor([2, 1])).shape == (2, 2)


def test_lstm_fcn_shuffles_dimensions_only_on_fixed_length_tasks():
    assert build("lstm_fcn", UNI).lstm.input_size == 150  # one step of 150 features
    assert build("lstm_fcn", MULTI).lstm.input_size == 12  # 29 packed steps of 12 features
    unshuffled = build_model("lstm_fcn", UNI, dimension_shuffle=False, **SMALL["lstm_fcn"])
    assert unshuffled.lstm.input_size == 1


@pytest.mark.parametrize("name", SUMMARY)
def test_pooling_models_refuse_a_label_per_step(name):
    with pytest.raises(ConvrecError, match="the task wants a label per step"):
        build_model(name, STEPS)


@pytest.mark.parametrize("name", list(SMALL))
def test_sequence_models_refuse_images(name):
    with pytest.raises(ConvrecError, match="inputs, and the task has image"):
        build_model(name, IOSpec("image", (1, 28, 28), 10))


@pytest.mark.parametrize(
    ("name", "hparams"),
    [
        ("fcn", {"channels": [8, 8], "kernels": [3]}),
        ("lstm_fcn", {"channels": [], "kernels": []}),
        ("resnet1d", {"kernels": []}),
        ("tcn", {"channels": []}),
        ("textcnn", {"kernel_sizes": [0, 3]}),
    ],
)
def test_bad_hyperparameters_name_the_config_file(name, hparams):
    with pytest.raises(ConvrecError, match=f"conf/model/{name}.yaml"):
        build_model(name, UNI, **hparams)
