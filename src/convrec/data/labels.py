"""Class labels given as strings (a UCR file's, a user's table or folder names) to ids, and
the trivial predictor every such task is compared with."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from convrec.errors import ConvrecError


def encode_labels(
    train: Sequence[str], test: Sequence[str], where: str
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(class names, train ids, test ids): ids 0..K-1 in sorted order of the names. A test
    label the train split lacks is refused (no model could learn it)."""
    class_names = sorted(set(train))
    unseen = sorted(set(test) - set(class_names))
    if unseen:
        raise ConvrecError(f"{where}: test labels {unseen} never occur in the train split; "
                           "every class needs training examples")  # fmt: skip
    index = {name: i for i, name in enumerate(class_names)}
    ids = [torch.tensor([index[label] for label in labels], dtype=torch.int64)
           for labels in (train, test)]  # fmt: skip
    return class_names, ids[0], ids[1]


def majority_baseline(train_y: torch.Tensor, test_y: torch.Tensor, class_names: list[str]) -> dict:
    """The test accuracy of always predicting the train split's most frequent class (the first
    one on ties)."""
    majority = int(torch.bincount(train_y, minlength=len(class_names)).argmax())
    return {
        "value": round(100.0 * float((test_y == majority).float().mean()), 2),
        "what": f"accuracy (%) of always predicting the train split's majority class "
        f"{class_names[majority]!r}",
    }
