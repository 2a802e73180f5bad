import pytest
import torch

from convrec.errors import ConvrecError
from convrec.models import FAMILIES, MODELS, build_model, count_parameters
from convrec.models.cnn_lstm import columns_as_sequence
from convrec.models.spec import IOSpec, as_sequence

IMAGE = IOSpec("image", (1, 28, 28), 10)
SEQUENCE = IOSpec("sequence", (1, 40), 10)
MULTICHANNEL = IOSpec("sequence", (3, 25), 4)
VARIABLE = IOSpec("sequence", (12, 29), 9, variable_length=True)
TOKENS = IOSpec("tokens", (30,), 2, vocab_size=50, variable_length=True)
SPECTROGRAM = IOSpec("sequence", (8, 20), 10, variable_length=True, image_view=True)
STEPS = IOSpec("tokens", (30,), 10, target_kind="steps", vocab_size=10)
VALUE = IOSpec("sequence", (2, 50), 0, target_kind="value")
SPECS = {"image": IMAGE, "seq": SEQUENCE, "seq3ch": MULTICHANNEL, "variable": VARIABLE,
         "tokens": TOKENS, "spectrogram": SPECTROGRAM, "steps": STEPS, "value": VALUE}  # fmt: skip
def _inputs(spec: IOSpec, batch: int, generator=None, shortest=1) -> list[torch.Tensor]:
    if spec.input_kind == "tokens":
        x = torch.randint(0, spec.vocab_size, (batch, *spec.input_shape), generator=generator)
    else:
        x = torch.randn(batch, *spec.input_shape, generator=generator)
    if not spec.variable_length:
        return [x]
    lengths = torch.randint(shortest, spec.steps + 1, (batch,), generator=generator)
    lengths[0] = spec.steps
    x = x * (torch.arange(spec.steps) < lengths[:, None]).view(batch, *([1] * (x.dim() - 2)), -1)
    return [x.to(torch.long) if spec.input_kind == "tokens" else x, lengths]


def _expected_shape(spec: IOSpec, batch: int) -> tuple[int, ...]:
    if spec.target_kind == "steps":
        return (batch, spec.steps, spec.num_classes)
    return (batch,) if spec.target_kind == "value" else (batch, spec.num_classes)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("spec_id", list(SPECS))
def test_every_model_gives_the_targets_shape_or_refuses_clearly(name, spec_id):
    """What a model declares it accepts (`accepts`) it builds for and answers in the target's
    shape; anything else `build_model` refuses with one line naming the models that fit."""
    spec = SPECS[spec_id]
    if MODELS.get(name).accepts.refusal(spec) is not None:
        with pytest.raises(ConvrecError, match=f"model {name} cannot train on .*models that fit"):
            build_model(name, spec)
        return
    model = build_model(name, spec)
    assert model(*_inputs(spec, 5)).shape == _expected_shape(spec, 5)
    assert MODELS.get(name).family in FAMILIES
    assert count_parameters(model) > 0


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "bilstm", "cnn_lstm", "mingru",
                                  "minlstm", "s4d"])  # fmt: skip
@pytest.mark.parametrize("spec_id", ["variable", "tokens", "spectrogram"])
def test_padding_never_changes_a_prediction(name, spec_id):
    """Each sequence alone, cut to its length, gives what it gives inside a padded batch."""
    spec = SPECS[spec_id]
    if name == "cnn_lstm" and spec_id == "spectrogram":
        spec = IOSpec("sequence", (8, 24), 10, variable_length=True, image_view=True)
    torch.manual_seed(0)
    model = build_model(name, spec).eval()
    # cnn_lstm's two pooling blocks need 4 steps to leave one
    x, lengths = _inputs(spec, 6, torch.Generator().manual_seed(1), 4 if name == "cnn_lstm" else 1)
    with torch.no_grad():
        batched = model(x, lengths)
        for i, length in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, ..., :length], lengths[i : i + 1])
            torch.testing.assert_close(alone, batched[i : i + 1], atol=1e-5, rtol=1e-4)


def test_image_is_read_row_by_row():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # C=2, H=3, W=4
    seq = as_sequence(x)
    assert seq.shape == (1, 3, 8)  # 3 rows, each row's pixels of both channels
    assert torch.equal(seq[0, 1], torch.cat([x[0, 0, 1], x[0, 1, 1]]))


def test_sequence_is_read_step_by_step():
    x = torch.randn(2, 3, 7)
    assert torch.equal(as_sequence(x)[:, 4], x[:, :, 4])


def test_feature_map_is_read_column_by_column():
    fmap = torch.randn(2, 4, 3, 5)  # C, H, W
    cols = columns_as_sequence(fmap)
    assert cols.shape == (2, 5, 12)
    assert torch.equal(cols[:, 2], fmap[:, :, :, 2].reshape(2, 12))


@pytest.mark.parametrize("name", ["lstm", "gru", "cnn_lstm"])
def test_bidirectional_recurrent_models_concatenate_both_directions(name):
    one = build_model(name, IMAGE, bidirectional=False)
    two = build_model(name, IMAGE, bidirectional=True)
    assert two.head.linear.in_features == 2 * one.head.linear.in_features
    assert two(IMAGE.example(3)).shape == (3, 10)


def test_cnn_knobs_change_the_network():
    wide = build_model("cnn", IMAGE, channels=[8, 16, 32], kernel_size=5, stride=1, dilation=2,
                       pool="avg", activation="tanh", batch_norm=False, dropout=0.1)  # fmt: skip
    kinds = {type(m).__name__ for m in wide.features.modules()}
    assert {"Conv2d", "AvgPool2d", "Tanh", "Dropout"} <= kinds and "BatchNorm2d" not in kinds
    assert wide(IMAGE.example(2)).shape == (2, 10)
    strided = build_model("cnn", IMAGE, channels=[8], stride=2, pool=None, groups=1)
    assert strided(IMAGE.example(2)).shape == (2, 10)
    conv1d = build_model("cnn", SEQUENCE, activation="sigmoid")
    assert any(isinstance(m, torch.nn.Conv1d) for m in conv1d.modules())


def test_bad_hyperparameters_fail_with_a_clear_message():
    with pytest.raises(ConvrecError, match="activation 'swish' is unknown"):
        build_model("cnn", IMAGE, activation="swish")
    with pytest.raises(ConvrecError, match="pool 'median' is unknown"):
        build_model("cnn", IMAGE, pool="median")
    with pytest.raises(ConvrecError, match="conf/model/mlp.yaml"):
        build_model("mlp", IMAGE, widths=[3])
    with pytest.raises(ConvrecError, match="unknown model 'transformer'"):
        build_model("transformer", IMAGE)
