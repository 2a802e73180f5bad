import pytest
import torch

from convrec.errors import ConvrecError
from convrec.models import FAMILIES, MODELS, build_model, count_parameters
from convrec.models.cnn_lstm import columns_as_sequence
from convrec.models.spec import IOSpec, as_sequence

IMAGE = IOSpec("image", (1, 28, 28), 10)
SEQUENCE = IOSpec("sequence", (1, 40), 10)
MULTICHANNEL = IOSpec("sequence", (3, 25), 4)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("spec", [IMAGE, SEQUENCE, MULTICHANNEL], ids=["image", "seq", "seq3ch"])
def test_every_model_maps_a_batch_to_class_logits(name, spec):
    model = build_model(name, spec)
    out = model(spec.example(5))
    assert out.shape == (5, spec.num_classes)
    assert MODELS.get(name).family in FAMILIES
    assert count_parameters(model) > 0


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
    assert two.head.in_features == 2 * one.head.in_features
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
