import torch
from torch.utils.data import DataLoader

from convrec.data.datamodule import BatchIndexedDataset, LengthBucketSampler, keep_batch
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
