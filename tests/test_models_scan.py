"""Recurrent models trained in parallel (minGRU, minLSTM, S4D): the parallel computation and
the step-by-step recurrence give the same outputs; padding never changes a real step."""

from __future__ import annotations

import pytest
import torch

from convrec.models import build_model
from convrec.models.mingru import MinGRUCell
from convrec.models.minlstm import MinLSTMCell
from convrec.models.s4d import S4DLayer
from convrec.models.spec import IOSpec

LAYERS = {"mingru": MinGRUCell, "minlstm": MinLSTMCell, "s4d": S4DLayer}
# odd and even lengths at every level of the scan's halving (a padded step at one level, at
# several), powers of two, and the longest sequence the acceptance names
LENGTHS = [1, 2, 3, 5, 8, 17, 63, 2048]


def _modes(layer, x):
    with torch.no_grad():
        return layer(x, "parallel"), layer(x, "sequential")


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("steps", LENGTHS)
def test_parallel_and_step_by_step_agree_in_float64(name, steps):
    torch.manual_seed(steps)
    layer = LAYERS[name](6, 8).double()
    parallel, sequential = _modes(layer, 3 * torch.randn(3, steps, 6, dtype=torch.float64))
    torch.testing.assert_close(parallel, sequential, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("steps", LENGTHS)
def test_parallel_and_step_by_step_agree_in_float32(name, steps):
    """Within 1e-4 of the outputs' scale (an output near zero has no relative precision)."""
    torch.manual_seed(steps)
    parallel, sequential = _modes(LAYERS[name](6, 8), 3 * torch.randn(3, steps, 6))
    scale = sequential.abs().max().item()
    torch.testing.assert_close(parallel, sequential, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", list(LAYERS))
def test_a_whole_model_answers_alike_in_both_modes(name):
    spec = IOSpec("sequence", (3, 300), 5)
    torch.manual_seed(0)
    parallel = build_model(name, spec, width=16).double().eval()
    sequential = build_model(name, spec, width=16, mode="sequential").double().eval()
    sequential.load_state_dict(parallel.state_dict())
    x = torch.randn(4, 3, 300, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), sequential(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("target", ["class", "value", "steps", "tags"])
def test_padding_changes_no_real_step_for_any_target(name, target):
    """Each sequence alone, cut to its length, gives what it gives inside a padded batch: its
    one output, or its output at every real step."""
    classes = 0 if target == "value" else 4
    spec = IOSpec("tokens", (40,), classes, target_kind=target, vocab_size=20,
                  variable_length=True)  # fmt: skip
    torch.manual_seed(0)
    model = build_model(name, spec, width=16).eval()
    lengths = torch.tensor([40, 3, 17, 1, 29])
    x = torch.randint(1, 20, (5, 40)) * (torch.arange(40) < lengths[:, None])
    with torch.no_grad():
        batched = model(x, lengths)
        expected = {"class": (5, 4), "value": (5,), "steps": (5, 40, 4), "tags": (5, 40, 4)}
        assert batched.shape == expected[target]
        for i, length in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, :length], lengths[i : i + 1])
            mine = batched[i : i + 1, :length] if spec.per_step else batched[i : i + 1]
            torch.testing.assert_close(alone, mine, atol=1e-5, rtol=1e-4)


def test_an_unknown_mode_is_one_line():
    from convrec.errors import ConvrecError

    with pytest.raises(ConvrecError, match="scan mode 'fast' is unknown"):
        build_model("mingru", IOSpec("sequence", (1, 10), 2), mode="fast")
