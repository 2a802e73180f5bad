import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader, DistributedSampler

from convrec.data.datamodule import (
    BatchChunks,
    BatchIndexedDataset,
    LengthBucketSampler,
    batch_count,
    keep_batch,
)
from convrec.errors import ConvrecError
from convrec.models import build_model
from convrec.models.spec import IOSpec


def _epochs(sampler, n=2):
    """Its batches for epochs 0 .. n - 1, as Lightning asks for them (set_epoch first)."""
    batches = []
    for epoch in range(n):
        sampler.set_epoch(epoch)
        batches.append(list(sampler))
    return batches


def test_length_buckets_cover_every_sample_once_per_epoch_in_a_new_order():
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(0))
    first, second = _epochs(LengthBucketSampler(lengths, batch_size=32, pool=5, seed=1))
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(1000))
        assert len(epoch) == len(LengthBucketSampler(lengths, 32)) == 32  # ceil(1000 / 32)
        assert max(len(batch) for batch in epoch) == 32
    assert first != second  # a fresh order every epoch
    assert _epochs(LengthBucketSampler(lengths, 32, pool=5, seed=1)) == [first, second]
    resumed = LengthBucketSampler(lengths, 32, pool=5, seed=1)  # a run resumed at epoch 1
    resumed.set_epoch(1)
    assert list(resumed) == second


def test_length_buckets_pad_far_less_than_random_batches():
    lengths = torch.randint(1, 60, (2000,), generator=torch.Generator().manual_seed(0))

    def padded_steps(batches):
        return sum(int(lengths[b].max()) * len(b) for b in batches)

    bucketed = padded_steps(list(LengthBucketSampler(lengths, batch_size=50, seed=0)))
    random = padded_steps(torch.randperm(2000).split(50))
    assert bucketed < 0.65 * random


def test_token_batches_are_cut_to_their_longest_sequence_and_floats_are_not():
    ids = torch.zeros(4, 10, dtype=torch.long)
    lengths = torch.tensor([3, 7, 2, 5])
    tokens = BatchIndexedDataset(ids, lengths, torch.zeros(4), trim=True)
    x, batch_lengths, _ = tokens.__getitems__([0, 2, 3])
    assert x.shape == (3, 5) and batch_lengths.tolist() == [3, 2, 5]
    floats = BatchIndexedDataset(torch.zeros(4, 2, 10), lengths, torch.zeros(4))
    assert floats.__getitems__([0, 2])[0].shape == (2, 2, 10)


def test_cutting_the_padding_never_changes_a_text_models_prediction():
    spec = IOSpec(input_kind="tokens", input_shape=(30,), vocab_size=50, variable_length=True,
                  target_kind="class", num_classes=2)  # fmt: skip
    torch.manual_seed(0)
    lengths = torch.tensor([4, 12, 9, 2])
    ids = torch.randint(2, 50, (4, 30)) * (torch.arange(30) < lengths[:, None])
    data = BatchIndexedDataset(ids, lengths, torch.zeros(4, dtype=torch.long), trim=True)
    (x, batch_lengths, _), = DataLoader(data, batch_size=4, collate_fn=keep_batch)  # fmt: skip
    assert x.shape == (4, 12)
    for name in ("textcnn", "bilstm", "cnn_lstm"):
        net = build_model(name, spec).eval()
        with torch.no_grad():
            torch.testing.assert_close(net(x, batch_lengths), net(ids, lengths), msg=name)


def test_a_batch_cut_to_one_token_still_runs_through_every_text_model():
    spec = IOSpec(input_kind="tokens", input_shape=(30,), vocab_size=50, variable_length=True,
                  target_kind="class", num_classes=2)  # fmt: skip
    ids = torch.zeros(3, 30, dtype=torch.long)
    ids[:, 0] = torch.tensor([5, 7, 9])
    data = BatchIndexedDataset(ids, torch.ones(3, dtype=torch.long), torch.zeros(3), trim=True)
    x, lengths, _ = data.__getitems__([0, 1, 2])
    assert x.shape == (3, 1)  # SST-2 has one-word phrases: such a batch broke CNN+LSTM pooling
    text_models = ("textcnn", "bilstm", "cnn_lstm", "lstm", "gru", "tcn", "fcn", "resnet1d",
                   "lstm_fcn")  # fmt: skip
    for name in text_models:
        net = build_model(name, spec).eval()
        with torch.no_grad():
            assert net(x, lengths).shape == (3, 2), name


def _flat(chunks) -> list[list[int]]:
    return [batch[0].tolist() for chunk in chunks for batch in chunk]


def test_training_batches_come_in_chunks_in_the_samplers_order_and_lightning_sets_the_epoch():
    data = BatchIndexedDataset(torch.arange(100), torch.zeros(100))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3)
    loader = DataLoader(data, batch_size=10, sampler=sampler, collate_fn=keep_batch)
    chunks = BatchChunks(loader, sampler, size=3, batches=7)  # limit_train_batches=7
    first = list(chunks)
    assert [len(chunk) for chunk in first] == [3, 3, 1] and len(chunks) == 3
    assert _flat(first) == [batch[0].tolist() for batch in loader][:7]  # the loader's order
    _set_sampler_epoch(chunks, 1)  # what Lightning's fit loop calls before each epoch
    assert sampler.epoch == 1 and _flat(chunks) != _flat(first)


def test_lightning_sets_the_epoch_of_length_buckets_through_the_chunks():
    # Lightning looks for set_epoch on a loader's sampler and its batch sampler's sampler,
    # never on the batch sampler itself: the chunks name the buckets as their sampler.
    lengths = torch.randint(1, 60, (200,), generator=torch.Generator().manual_seed(0))
    data = BatchIndexedDataset(torch.zeros(200, 60, dtype=torch.long), lengths, torch.zeros(200))
    buckets = LengthBucketSampler(lengths, batch_size=16, seed=1)
    loader = DataLoader(data, batch_sampler=buckets, collate_fn=keep_batch)
    chunks = BatchChunks(loader, buckets, size=4, batches=len(loader))
    _set_sampler_epoch(chunks, 2)
    assert buckets.epoch == 2


def test_the_training_batch_limit_counts_batches_as_lightning_counts_them():
    assert batch_count(430, None) == 430
    assert batch_count(430, 8) == 8 and batch_count(5, 8) == 5
    assert batch_count(430, 0.25) == 107 and batch_count(430, 1.0) == 430
    with pytest.raises(ConvrecError, match="limit_train_batches=0.001 leaves no training batch"):
        batch_count(430, 0.001)
    assert batch_count(40, 0, "val") == 0  # validation off, as in Lightning
    with pytest.raises(ConvrecError, match="limit_val_batches=-2 is negative"):
        batch_count(40, -2, "val")


def test_evaluation_batches_come_in_chunks_in_order_cut_to_their_limit_and_sharded_under_ddp(
    prepared_root,
):
    """Validation and test loaders hand Lightning chunks of batches as training's does; the
    trainer's limit_<split>_batches counts batches (0: no validation); under DDP each process
    takes every world-th sample in order, as Lightning's own sampler did."""
    from types import SimpleNamespace

    from convrec.data.datamodule import BATCHES_PER_CALL, PreparedDataModule

    def served(module, split):
        loader = module.val_dataloader() if split == "val" else module.test_dataloader()
        return [batch for chunk in loader for batch in chunk], loader

    module = PreparedDataModule(prepared_root / "mnist1d", 8, batches={"val": 20, "test": None})
    module.load()
    batches, loader = served(module, "val")
    assert len(loader) == -(-20 // BATCHES_PER_CALL) and len(batches) == 20
    val = module.datasets["val"].tensors
    assert torch.equal(torch.cat([b[-1] for b in batches]), val[-1][: 20 * 8])  # in order
    test, _ = served(module, "test")
    assert sum(len(b[-1]) for b in test) == len(module.datasets["test"])
    off = PreparedDataModule(prepared_root / "mnist1d", 8, batches={"val": 0})
    off.load()
    assert served(off, "val")[0] == []

    ranks = []
    for rank in (0, 1):
        sharded = PreparedDataModule(prepared_root / "mnist1d", 8)
        sharded.load()
        sharded.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        ranks.append(torch.cat([b[0] for b in served(sharded, "test")[0]]))
    x = module.datasets["test"].tensors[0]
    assert torch.equal(ranks[0], x[0::2]) and torch.equal(ranks[1], x[1::2])
