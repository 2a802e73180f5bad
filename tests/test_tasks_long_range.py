import hashlib
import math
from operator import attrgetter

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF
from convrec.data.tasks import TASKS
from convrec.data.tasks.long_range import pixel_permutation
from convrec.data.tasks.mnist import MNIST_FILES


def _task(name: str, **settings):
    """The task's own yaml, small sizes overriding the profile settings."""
    cfg = OmegaConf.load(CONF / "task" / f"{name}.yaml")
    return OmegaConf.merge(cfg, {"profile": "quick"}, settings)


def _load(name: str, tmp_path, **settings):
    return TASKS.get(name)(_task(name, **settings), tmp_path / "raw")


def test_the_yamls_name_their_loaders_and_profile_settings():
    for name in ("seq_mnist", "pmnist", "adding", "copy_memory"):
        cfg = OmegaConf.load(CONF / "task" / f"{name}.yaml")
        assert cfg.name == name and TASKS.get(name)
        assert cfg.split_seed == 0 and set(cfg.max_epochs) == {"quick", "full"}
    for name in ("seq_mnist", "pmnist"):
        cfg = OmegaConf.load(CONF / "task" / f"{name}.yaml")
        assert cfg.train_limit.full is None and 0 < cfg.train_limit.quick < 60000 - cfg.val_size
        assert cfg.test_limit.full is None


@pytest.mark.parametrize("name", ["adding", "copy_memory"])
def test_generated_tasks_are_deterministic_under_their_seed(name, tmp_path):
    small = {"seq_len": 30, "train_size": 64, "test_size": 16}
    a = _load(name, tmp_path, generator_seed=3, **small)
    b = _load(name, tmp_path, generator_seed=3, **small)
    c = _load(name, tmp_path, generator_seed=4, **small)
    for field in ("train.x", "train.y", "test.x", "test.y"):
        assert torch.equal(attrgetter(field)(a), attrgetter(field)(b))
        assert not torch.equal(attrgetter(field)(a), attrgetter(field)(c))
    assert a.generator == b.generator and a.generator["generator_seed"] == 3
    # Each split has its own stream: a bigger training set leaves the test set alone.
    bigger = _load(name, tmp_path, generator_seed=3, **{**small, "train_size": 128})
    assert torch.equal(bigger.test.x, a.test.x) and torch.equal(bigger.train.x[:64], a.train.x)


def test_profiles_pick_the_sizes(tmp_path):
    sizes = {"seq_len": {"quick": 20, "full": 40}, "train_size": {"quick": 8, "full": 12}}
    quick = _load("adding", tmp_path, **sizes, test_size=4)
    full = _load("adding", tmp_path, **sizes, test_size=4, profile="full")
    assert quick.train.x.shape == (8, 2, 20) and full.train.x.shape == (12, 2, 40)


def test_adding_targets_are_the_sum_of_one_marked_value_per_half(tmp_path):
    seq_len = 31  # odd: the first half is 15 steps, the second 16
    raw = _load("adding", tmp_path, seq_len=seq_len, train_size=500, test_size=50)
    assert raw.input_kind == "sequence" and raw.target_kind == "value" and not raw.normalize
    assert raw.class_names == []
    for x, y in ((raw.train.x, raw.train.y), (raw.test.x, raw.test.y)):
        assert x.dtype == torch.float32 and y.dtype == torch.float32 and x.shape[1:] == (2, 31)
        values, markers = x[:, 0], x[:, 1]
        assert values.min() >= 0 and values.max() < 1
        assert set(markers.unique().tolist()) == {0.0, 1.0}
        half = seq_len // 2
        assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
        if len(y) == 500:  # every position of each half gets marked (~33 times each)
            assert (markers.sum(0) > 0).all()
        torch.testing.assert_close(y, (values * markers).sum(1))


def test_adding_baseline_is_the_mse_of_predicting_one(tmp_path):
    raw = _load("adding", tmp_path, seq_len=4, train_size=200_000, test_size=1)
    assert raw.baseline["value"] == pytest.approx(1 / 6, abs=1e-12)
    mse = ((raw.train.y.double() - 1.0) ** 2).mean().item()
    assert mse == pytest.approx(1 / 6, abs=0.003)  # sd of the estimate ~ 0.0004


def test_copy_memory_recalls_the_digits_after_the_delimiter(tmp_path):
    blank, memory = 25, 10
    raw = _load("copy_memory", tmp_path, seq_len=blank, train_size=300, test_size=20)
    assert raw.input_kind == "tokens" and raw.target_kind == "steps" and not raw.normalize
    assert raw.vocab == [str(d) for d in range(10)]
    assert raw.class_names == ["blank", *"12345678", "delimiter"]
    length = blank + 2 * memory
    for x, y in ((raw.train.x, raw.train.y), (raw.test.x, raw.test.y)):
        assert x.dtype == torch.int64 and y.dtype == torch.int64
        assert x.shape[1:] == (length,) and y.shape[1:] == (length,)
        digits = x[:, :memory]
        assert digits.min() >= 1 and digits.max() <= 8
        assert (x[:, memory : memory + blank - 1] == 0).all()
        # locuslab/TCN fills the last memory + 1 steps with 9; the first is the delimiter.
        assert (x[:, blank + memory - 1 :] == 9).all()
        assert (y[:, : blank + memory] == 0).all()
        assert torch.equal(y[:, -memory:], digits)
    assert set(raw.train.x[:, :memory].unique().tolist()) == set(range(1, 9))


def test_copy_memory_baseline_is_the_stated_strategys_cross_entropy(tmp_path):
    blank, memory = 40, 10
    raw = _load("copy_memory", tmp_path, seq_len=blank, train_size=200, test_size=10)
    assert raw.baseline["value"] == pytest.approx(10 * math.log(8) / (blank + 20))
    # The strategy: certain blank until the recall, then 1/8 on each of 1..8.
    n, length = raw.train.y.shape
    probs = torch.zeros(n, length, 10, dtype=torch.float64)
    probs[:, : blank + memory, 0] = 1.0
    probs[:, blank + memory :, 1:9] = 1 / 8
    loss = torch.nn.functional.nll_loss(probs.log().reshape(-1, 10), raw.train.y.reshape(-1))
    assert loss.item() == pytest.approx(raw.baseline["value"], rel=1e-12)


def test_the_pmnist_permutation_is_a_fixed_permutation():
    order = pixel_permutation(0)
    assert torch.equal(order.sort().values, torch.arange(784))
    assert torch.equal(order, pixel_permutation(0)) and not torch.equal(order, pixel_permutation(1))
    assert not torch.equal(order, torch.arange(784))


def test_seq_mnist_and_pmnist_read_the_same_pixels(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVREC_DATA_MIRROR", str(mirror))
    seq = _load("seq_mnist", tmp_path)
    perm = _load("pmnist", tmp_path, permutation_seed=5)
    assert seq.input_kind == "sequence" and seq.target_kind == "class" and seq.normalize
    assert seq.train.x.shape == (60000, 1, 784) and seq.test.x.shape == (10000, 1, 784)
    assert seq.train.x.dtype == torch.uint8 and seq.train.y.dtype == torch.int64
    assert seq.train.x.min() == 0 and seq.train.x.max() == 255
    assert torch.bincount(seq.test.y).tolist()[:2] == [980, 1135]  # the official test split
    assert seq.sources == {f"MNIST/raw/{n}": sha for n, (sha, _) in MNIST_FILES.items()}
    assert perm.sources == seq.sources and torch.equal(perm.train.y, seq.train.y)
    order = pixel_permutation(5)
    assert torch.equal(perm.test.x, seq.test.x[:, :, order])
    assert torch.equal(perm.train.x[:100], seq.train.x[:100, :, order])
    expected = hashlib.sha256(order.numpy().astype("<i8").tobytes()).hexdigest()
    assert perm.generator["permutation_seed"] == 5
    assert perm.generator["permutation_sha256"] == expected
