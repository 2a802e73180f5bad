"""The procedural digit tasks: multi-digit images (1 -> N) and moving digits (video -> 1)."""

import numpy as np
import pytest
import torch

from convrec.data.tasks.mnist import shrink
from convrec.data.tasks.moving_digits import DIRECTIONS, bounce, clip, moving_samples
from convrec.data.tasks.multidigit import HEIGHT, WIDTH, compose, multidigit_samples
from convrec.errors import ConvrecError
from convrec.models import build_model
from convrec.models.spec import IOSpec
from convrec.targets import TARGET_PAD


def block(width: int, value: int, ink_from: int = 5) -> np.ndarray:
    """A fake 28x28 digit: `width` inked columns from `ink_from`, first column 255 as a marker."""
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[:, ink_from : ink_from + width] = value
    digit[:, ink_from] = 255
    return digit


def test_compose_crops_digits_and_pastes_them_left_to_right():
    canvas = compose([block(4, 10), block(6, 20)], np.array([3]), 0.0, np.array([0, 4]))
    assert canvas.shape == (HEIGHT, WIDTH)
    # First digit: columns 0-3, rows 0-27; a 3-pixel gap; second digit: columns 7-12, rows 4-31.
    assert (canvas[:28, 0] == 255).all() and (canvas[:28, 1:4] == 10).all()
    assert (canvas[28:, :4] == 0).all() and (canvas[:, 4:7] == 0).all()
    assert (canvas[4:, 7] == 255).all() and (canvas[4:, 8:13] == 20).all()
    assert (canvas[:4, 7:13] == 0).all() and (canvas[:, 13:] == 0).all()


def test_compose_shrinks_gaps_until_five_wide_digits_fit():
    digits = [block(28, 50, ink_from=0)] * 5  # 140 px of ink in a 144 px canvas
    canvas = compose(digits, np.array([8, 8, 8, 8]), 0.99, np.zeros(5, dtype=int))
    assert (canvas > 0).any(axis=0).sum() == 140


def test_multidigit_targets_read_the_digits_left_to_right():
    """Fake digits whose ink value encodes their label: reading the canvas gives the target."""
    labels = np.arange(10)
    images = np.stack([block(6, 20 * (d + 1)) for d in labels])
    x, y = multidigit_samples(images, labels, 50, (3, 5), 8, np.random.default_rng(0))
    assert x.shape == (50, 1, HEIGHT, WIDTH) and y.shape == (50, 5)
    for image, target in zip(x[:, 0].numpy(), y.tolist(), strict=True):
        columns = image.max(axis=0)
        starts = np.flatnonzero(columns == 255)  # each digit's marker column
        read = [int(columns[s + 1]) // 20 - 1 for s in starts]
        assert read == [d for d in target if d != TARGET_PAD]
        assert 3 <= len(read) <= 5 and all(d == TARGET_PAD for d in target[len(read) :])


def test_digit_generators_are_deterministic_per_seed():
    images, labels = (
        np.random.default_rng(1).integers(0, 255, (20, 28, 28), np.uint8),
        np.arange(20) % 10,
    )
    a = multidigit_samples(images, labels, 8, (3, 5), 8, np.random.default_rng([0, 0]), 2)
    b = multidigit_samples(images, labels, 8, (3, 5), 8, np.random.default_rng([0, 0]), 2)
    c = multidigit_samples(images, labels, 8, (3, 5), 8, np.random.default_rng([0, 1]), 2)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (8, 1, HEIGHT // 2, WIDTH // 2)
    m1 = moving_samples(images, labels, 6, 5, 40, (2, 4), np.random.default_rng([0, 0]), 2)
    m2 = moving_samples(images, labels, 6, 5, 40, (2, 4), np.random.default_rng([0, 0]), 2)
    assert all(torch.equal(u, v) for u, v in zip(m1, m2, strict=True))
    assert m1[0].shape == (6, 1, 5, 20, 20)


def test_shrink_averages_blocks():
    image = np.array([[0, 2, 4, 4], [2, 4, 4, 4]], dtype=np.uint8)
    assert shrink(image, 2).tolist() == [[2, 4]]


def test_bounce_reflects_at_the_edges():
    assert bounce(18, 3, 5, 20) == [18, 19, 16, 13, 10]
    assert bounce(1, -2, 4, 20) == [1, 1, 3, 5]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_clip_moves_the_digit_in_its_direction(direction):
    digit = block(6, 100)
    video = clip(digit, direction, 3, (6, 6), 3, 48)[0]
    centre = [np.argwhere(frame).mean(axis=0) for frame in video]  # (row, col) per frame
    step = centre[1] - centre[0]
    expected = {"right": (0, 3), "left": (0, -3), "down": (3, 0), "up": (-3, 0)}[direction]
    assert tuple(step) == expected


def test_moving_digit_labels_pair_the_digit_with_its_first_step():
    """Every clip's first move is in its labelled direction; the digit is its image's label."""
    rng = np.random.default_rng(3)
    labels = np.arange(10)
    images = np.stack([block(6, 20 * (d + 1)) for d in labels])
    x, y = moving_samples(images, labels, 40, 4, 48, (2, 5), rng)
    for video, label in zip(x[:, 0].numpy(), y.tolist(), strict=True):
        digit, direction = divmod(label, len(DIRECTIONS))
        assert video[0][video[0] != 255].max() == 20 * (digit + 1)
        first, second = (np.argwhere(frame).mean(axis=0) for frame in video[:2])
        axis = 1 if DIRECTIONS[direction] in ("right", "left") else 0
        sign = 1 if DIRECTIONS[direction] in ("right", "down") else -1
        assert np.sign(second[axis] - first[axis]) == sign and second[1 - axis] == first[1 - axis]


VIDEO = IOSpec("video", (1, 6, 24, 24), 40)


@pytest.mark.parametrize("name", ["frame_cnn", "lrcn", "cnn"])
def test_video_models_give_one_label_per_clip(name):
    net = build_model(name, VIDEO, channels=[4, 8])
    assert net(torch.randn(3, *VIDEO.input_shape)).shape == (3, 40)


def test_only_the_frame_averaging_baseline_is_blind_to_frame_order():
    torch.manual_seed(0)
    clips = torch.randn(2, *VIDEO.input_shape)
    reversed_clips = clips.flip(2)
    for name, blind in (("frame_cnn", True), ("lrcn", False)):
        net = build_model(name, VIDEO, channels=[4, 8]).eval()
        with torch.no_grad():
            same = torch.allclose(net(clips), net(reversed_clips), atol=1e-5)
        assert same == blind, name


@pytest.mark.parametrize("name", ["frame_cnn", "lrcn", "crnn", "cnn_heads", "cnn_lstm_decoder"])
def test_digit_models_refuse_other_tasks_clearly(name):
    with pytest.raises(ConvrecError, match=f"model {name} cannot train on .* models that fit"):
        build_model(name, IOSpec("sequence", (1, 40), 10))
