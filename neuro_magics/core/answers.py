"""Answers at the next position: the tokens a user names as answers, the metric of a run's
last-position logits over them (logit difference, log-probability, probability), the top-k
next tokens, one prompt encoded with a message that names its role, and where a named piece of
text (a ROME subject) sits among a prompt's tokens. Patching, causal tracing and ROME editing
read runs through these.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import NeuroMagicsError
from .subject import Subject


def answer_token_ids(subject: Subject, answers: Sequence[str]) -> list[int]:
    """Token ids of single-token answers; a multi-token answer is one line that shows its split."""
    ids = []
    for answer in answers:
        if not answer:
            raise NeuroMagicsError("An answer is empty: give the next token you expect, e.g. ' Mary' (mind the space).")
        pieces = subject.tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            split = " + ".join(repr(p) for p in subject.token_pieces(pieces))
            raise NeuroMagicsError(
                f"The answer {answer!r} is {len(pieces)} tokens ({split}); answers must be single tokens: "
                "use its first token, or a word that is one token (often with a leading space)."
            )
        ids.append(int(pieces[0]))
    return ids


def metric_values(logits: torch.Tensor, answer_ids: Sequence[int], metric: str) -> torch.Tensor:
    """The metric per row from last-position logits ``[rows, vocab]`` (logsumexp, no full log-softmax)."""
    logits = at_least_float32(logits)
    if metric == "logit_diff":
        return logits[:, answer_ids[0]] - logits[:, answer_ids[1]]
    logprob = logits[:, answer_ids[0]] - torch.logsumexp(logits, dim=-1)
    return logprob if metric == "logprob" else logprob.exp()


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """At least float32 (float64 stays float64, so finite-difference checks can be exact)."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def top_tokens(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k next-token ids and probabilities per row of ``[rows, vocab]`` logits."""
    probs, ids = logits.float().softmax(-1).topk(k, dim=-1)
    return ids, probs


def encode_one(subject: Subject, prompt: str, role: str) -> torch.Tensor:
    """One prompt's token ids ``[1, T]``; a missing prompt is refused naming its ``role`` (clean,
    corrupt) as the option to give."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise NeuroMagicsError(f"The {role} prompt is missing: give the text to run, e.g. --{role} \"...\".")
    return subject.encode(prompt)["input_ids"]


def subject_positions(subject: Subject, prompt: str, subject_text: str) -> list[int]:
    """Token positions of the first occurrence of ``subject_text`` in ``prompt``."""
    if not subject_text or not subject_text.strip():
        raise NeuroMagicsError('Causal tracing needs --subject: the words in the prompt to noise, e.g. "Eiffel Tower".')
    start = prompt.find(subject_text)
    if start < 0:
        raise NeuroMagicsError(f"The subject {subject_text!r} does not occur in the prompt {prompt!r}.")
    end = start + len(subject_text)
    encoded = subject.tokenizer(prompt, return_offsets_mapping=True)
    return [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if a < end and b > start and b > a]
