"""What a model needs to know about a task: input layout, target layout, sizes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class IOSpec:
    # "image": (N, C, H, W); "sequence": (N, C, T); "tokens": (N, T) int64;
    # "video": (N, C, T, H, W)
    input_kind: str
    input_shape: tuple[int, ...]  # without the batch dimension (padded length when variable)
    num_classes: int  # output classes; 0 for a regression target
    # "class": (N,); "steps": a label per step (N, T); "value": (N,); "sequence": up to L
    # classes to generate (N, L), -1 after the end; "tags": a tag per token (N, T), -1 on padding
    target_kind: str = "class"
    vocab_size: int = 0  # "tokens" inputs only
    variable_length: bool = False  # batches come with lengths; padding must not change outputs
    image_view: bool = False  # a (C, T) sequence that 2-D CNNs should see as a (1, C, T) image
    question_length: int = 0  # image QA: the tokens of a question
    target_length: int = 0  # "sequence" targets: the most classes a target holds
    class_names: tuple[str, ...] = ()
    # image QA: (group name, token id) pairs; a question is in a group when it holds the token
    question_groups: tuple[tuple[str, int], ...] = ()
    # image QA: each input comes with (K, Q) token ids, K questions, and a model answers all
    # K: (N, K, num_classes)
    questions_per_input: int = 1

    @classmethod
    def from_meta(cls, meta: dict) -> IOSpec:
        return cls(
            meta["input_kind"],
            tuple(meta["input_shape"]),
            int(meta["num_classes"]),
            meta.get("target_kind", "class"),
            int(meta.get("vocab_size", 0)),
            bool(meta.get("variable_length", False)),
            bool(meta.get("image_view", False)),
            int(meta.get("question_length", 0)),
            int(meta.get("target_length", 0)),
            tuple(meta.get("class_names", ())),
            question_groups=tuple(meta.get("question_groups", {}).items()),
            questions_per_input=int(meta.get("questions_per_input", 1)),
        )

    @property
    def channels(self) -> int:
        return 1 if self.input_kind == "tokens" else self.input_shape[0]

    @property
    def steps(self) -> int:
        """Sequence length (padded); for an image, its number of rows; for a video, frames."""
        timed = self.input_kind in ("sequence", "tokens")
        return self.input_shape[-1] if timed else self.input_shape[1]

    @property
    def spatial_dims(self) -> int:
        """2 for images, 1 for sequences and tokens (embedded, they are 1-D signals)."""
        return max(1, len(self.input_shape) - 1)

    @property
    def per_step(self) -> bool:
        """The target has a label per input step (copy memory, slot filling)."""
        return self.target_kind in ("steps", "tags")

    @property
    def out_features(self) -> int:
        return self.num_classes if self.target_kind != "value" else 1

    def example(self, batch: int = 2) -> torch.Tensor:
        if self.input_kind == "tokens":
            return torch.zeros(batch, *self.input_shape, dtype=torch.long)
        return torch.zeros(batch, *self.input_shape)

    def example_inputs(self, batch: int = 2) -> list[torch.Tensor]:
        """Everything a batch passes to the model, in order: x, [lengths], [question]."""
        inputs = [self.example(batch)]
        if self.variable_length:
            inputs.append(torch.full((batch,), self.steps))
        if self.question_length:
            shape = (batch, self.questions_per_input, self.question_length)
            inputs.append(torch.ones(shape, dtype=torch.long))
        return inputs


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """Lay an input out as (N, steps, features) for a recurrent layer.

    An image is read row by row (each row's pixels of every channel are one
    step); a (N, C, T) sequence becomes T steps of C features.
    """
    if x.dim() == 4:
        n, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
    if x.dim() == 3:
        return x.transpose(1, 2)
    raise ValueError(f"expected (N, C, H, W) or (N, C, T), got shape {tuple(x.shape)}")


@dataclass(frozen=True)
class Accepts:
    """What a model takes and gives, declared on its class (`accepts = Accepts(...)`, as timm
    models carry their metadata): the one place the config check, `build_model` and the tests
    read a model's (task, model) pairs from.

    inputs: input kinds ("image", "sequence", "tokens", "video"); targets: target kinds
    ("class", "value", "steps", "tags", "sequence"); variable_length: takes (x, lengths) and
    pads without changing an output; question: answers a question about each input (image QA),
    and without it a model takes no question."""

    inputs: frozenset[str]
    targets: frozenset[str]
    variable_length: bool = False
    question: bool = False

    def __post_init__(self) -> None:  # declared as any collection of names
        object.__setattr__(self, "inputs", frozenset(self.inputs))
        object.__setattr__(self, "targets", frozenset(self.targets))

    def refusal(self, spec: IOSpec) -> str | None:
        """Why the model cannot train on a task of this spec, or None where it can."""
        if spec.input_kind not in self.inputs:
            return f"it reads {_kinds(self.inputs)} inputs, and the task has {spec.input_kind}"
        if spec.target_kind not in self.targets:
            return (f"it predicts {_kinds(self.targets)} targets, and the task wants "
                    f"{TARGET_WORDS.get(spec.target_kind, spec.target_kind)}")  # fmt: skip
        if spec.variable_length and not self.variable_length:
            return "it needs inputs of one fixed length, and the task's vary"
        if bool(spec.question_length) != self.question:
            if self.question:
                return "it answers questions about images, and the task asks none"
            return "it reads no question, and the task asks one about each image"
        return None


TARGET_WORDS = {"class": "a class", "value": "a value", "steps": "a label per step",
                "tags": "a tag per token", "sequence": "a sequence of classes"}  # fmt: skip


def _kinds(kinds: frozenset[str]) -> str:
    return " or ".join(sorted(kinds))
