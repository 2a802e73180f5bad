"""One input to a generated sequence of classes (the digits of a multi-digit image).

The model says how it is trained and read (`net.decoding`, see
convrec.models.decoding): CTC loss for "ctc", cross-entropy per position for
"slots", teacher forcing for "autoregressive" (the decoder reads the true previous
class, then is read with its own beam search). Validation and test decode every
sample and score exact sequence matches and the label error rate (edit distance
over target length, as a character error rate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from convrec.errors import ConvrecError
from convrec.lit.base import ACCURACY, LOSS, SupervisedModule, metric_key
from convrec.models.decoding import DECODINGS, ctc_greedy, slots_greedy
from convrec.models.spec import IOSpec
from convrec.targets import TARGET_PAD

ERROR_RATE = "der"  # digit error rate


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning a into b."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def target_lists(y: torch.Tensor) -> list[list[int]]:
    """(N, L) targets padded with -1 -> their label lists."""
    return [[v for v in row if v != TARGET_PAD] for row in y.tolist()]


class SequenceScores(Metric):
    """Exact-match rate or label error rate of decoded sequences; sums, so DDP-safe."""

    def __init__(self, score: str) -> None:
        super().__init__()
        self.score = score
        self.add_state("hits", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: list[list[int]], targets: list[list[int]]) -> None:
        for pred, target in zip(preds, targets, strict=True):
            if self.score == ACCURACY:
                self.hits += float(pred == target)
                self.total += 1
            else:
                self.hits += edit_distance(pred, target)
                self.total += len(target)

    def compute(self) -> torch.Tensor:
        return self.hits / self.total.clamp(min=1)


class SequenceModule(SupervisedModule):
    monitor = metric_key("val", ACCURACY)
    monitor_mode = "max"
    headline = ("exact match", metric_key("test", ACCURACY), 100.0, True)  # percent
    history_keys = (
        metric_key("train", LOSS),
        metric_key("val", LOSS),
        metric_key("val", ACCURACY),
        metric_key("val", ERROR_RATE),
    )

    def __init__(self, net: nn.Module, spec: IOSpec, optimizer, scheduler=None) -> None:
        super().__init__(net, optimizer, scheduler)
        if getattr(net, "decoding", None) not in DECODINGS:
            raise ConvrecError(
                f"{type(net).__name__} cannot write a sequence of classes (it has no `decoding`: "
                f"{', '.join(DECODINGS)}); use crnn, cnn_lstm_decoder, cnn_heads or lstm_ctc"
            )
        self.end = spec.num_classes  # the blank, "no more digits" or end-of-sequence class
        self.scores = nn.ModuleDict(
            {f"{stage}_{score}": SequenceScores(score)
             for stage in ("val", "test") for score in (ACCURACY, ERROR_RATE)}
        )  # fmt: skip

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, model outputs) for inputs x and targets y (N, L) padded with -1."""
        lengths = (y != TARGET_PAD).sum(1)
        if self.net.decoding == "ctc":
            logits = self.net(x)
            log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T, N, K + 1)
            steps = torch.full((len(y),), logits.shape[1], dtype=torch.long)
            # zero_infinity: a target longer than the model's steps must not poison the batch.
            loss = F.ctc_loss(log_probs, y.clamp(min=0), steps, lengths, blank=self.end,
                              zero_infinity=True)  # fmt: skip
            return loss, logits
        if self.net.decoding == "slots":
            logits = self.net(x)
            return F.cross_entropy(
                logits.transpose(1, 2), y.masked_fill(y == TARGET_PAD, self.end)
            ), logits
        # Teacher forcing: the target with its end class appended, -1 after it.
        ended = torch.cat([y, y.new_full((len(y), 1), TARGET_PAD)], dim=1)
        ended[torch.arange(len(y)), lengths] = self.end
        logits = self.net(x, y)  # (N, L + 1, K + 1)
        return F.cross_entropy(logits.transpose(1, 2), ended, ignore_index=TARGET_PAD), logits

    def decode(self, x: torch.Tensor, logits: torch.Tensor) -> list[list[int]]:
        if self.net.decoding == "ctc":
            return ctc_greedy(logits, self.end)
        if self.net.decoding == "slots":
            return slots_greedy(logits, self.end)
        return self.net.generate(x)

    def predict(self, x: torch.Tensor) -> list[list[int]]:
        if self.net.decoding in ("ctc", "slots"):
            return self.decode(x, self.net(x))
        return self.net.generate(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        loss, logits = self.loss(x, y)
        self.add_mean(stage, LOSS, loss.detach() * len(y), len(y))
        if stage != "train":  # decoding (beam search) is for evaluation only
            preds, targets = self.decode(x, logits), target_lists(y)
            for score in (ACCURACY, ERROR_RATE):
                self.scores[f"{stage}_{score}"].update(preds, targets)
        return loss

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        if stage == "train":
            return {}
        return {score: self.scores[f"{stage}_{score}"] for score in (ACCURACY, ERROR_RATE)}
