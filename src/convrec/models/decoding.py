"""From a sequence model's outputs to label sequences: how each kind of model is read.

Models that write a sequence of classes (a digit string) say how with `decoding`:
- "ctc": per-step logits (N, T, K + 1), class K the blank (Graves et al. 2006);
- "slots": logits (N, L, K + 1) for L fixed positions, class K "no more labels"
  (Goodfellow et al. 2014's one head per digit);
- "autoregressive": a decoder that emits one class at a time, class K ending the
  sequence; read with beam search (beam 1 is greedy decoding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DECODINGS = ("ctc", "slots", "autoregressive")


def ctc_greedy(logits: torch.Tensor, blank: int) -> list[list[int]]:
    """Best path: the most likely class per step, repeats merged, blanks dropped."""
    best = logits.argmax(-1).tolist()
    out = []
    for path in best:
        labels, previous = [], blank
        for label in path:
            if label != previous and label != blank:
                labels.append(label)
            previous = label
        out.append(labels)
    return out


def slots_greedy(logits: torch.Tensor, end: int) -> list[list[int]]:
    """The most likely class per position, up to the first "no more labels"."""
    out = []
    for path in logits.argmax(-1).tolist():
        out.append(path[: path.index(end)] if end in path else path)
    return out


Step = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], tuple[torch.Tensor, tuple]]


@torch.no_grad()
def beam_search(
    step: Step,
    state: tuple[torch.Tensor, ...],
    start: int,
    end: int,
    max_len: int,
    beam_size: int = 1,
) -> list[list[int]]:
    """Keep the `beam_size` most likely prefixes per sample; return each sample's best.

    `step(tokens (B,), state) -> (log-probabilities (B, V), state)`, every state tensor
    batch-first. A finished prefix (it emitted `end`) keeps its score; one that reaches
    `max_len` labels is ended there, its score unchanged. Scores are summed
    log-probabilities (no length normalisation: the targets here are short and of
    similar lengths).
    """
    n, k = state[0].shape[0], beam_size
    state = tuple(s.repeat_interleave(k, 0) for s in state)
    tokens = torch.full((n * k,), start, dtype=torch.long, device=state[0].device)
    scores = torch.full((n, k), float("-inf"), device=state[0].device)
    scores[:, 0] = 0.0  # every beam starts as the same empty prefix: keep one copy alive
    history = torch.zeros(n * k, 0, dtype=torch.long, device=state[0].device)
    finished = torch.zeros(n * k, dtype=torch.bool, device=state[0].device)
    for _ in range(max_len + 1):
        log_probs, state = step(tokens, state)
        vocab = log_probs.shape[1]
        stay = torch.full_like(log_probs, float("-inf"))
        stay[:, end] = 0.0  # a finished prefix only "extends" with end, at no cost
        # A prefix of max_len labels (the longest target) is ended there, at no cost.
        full = history.shape[1] == max_len
        log_probs = stay if full else torch.where(finished[:, None], stay, log_probs)
        total = (scores.reshape(-1, 1) + log_probs).reshape(n, k * vocab)
        scores, flat = total.topk(k, dim=1)
        source = (torch.arange(n, device=flat.device)[:, None] * k + flat // vocab).reshape(-1)
        tokens = (flat % vocab).reshape(-1)
        state = tuple(s[source] for s in state)
        history = torch.cat([history[source], tokens[:, None]], dim=1)
        finished = finished[source] | (tokens == end)
        if bool(finished.all()):
            break
    best = history.reshape(n, k, -1)[torch.arange(n), scores.argmax(1)].tolist()
    return [path[: path.index(end)] if end in path else path for path in best]
