"""Scoring text under the subject as it is now: the model's own forward (whatever program and
hooks are active), unembedding only the positions asked for, and the perplexity of the built-in
text that every before/after comparison reports (diffs, pruning).

The built-in texts (``probes/diff_prompts.json``): varied prompts for before/after diffs and one
short neutral passage for perplexity.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .runner import position_ids_for
from .subject import Subject, with_lock

_DIFF_PROMPTS = Path(__file__).parent.parent / "probes" / "diff_prompts.json"


@lru_cache(maxsize=1)
def _probes() -> dict[str, Any]:
    return json.loads(_DIFF_PROMPTS.read_text(encoding="utf-8"))


def default_prompts() -> list[str]:
    """The built-in varied prompts: facts, arithmetic, code, a list, a story, reasoning, translation."""
    return list(_probes()["prompts"])


def perplexity_text() -> str:
    """The short neutral text whose perplexity every diff reports."""
    return _probes()["perplexity_text"]


def perplexity_ids(subject: Subject, context: int | None) -> torch.Tensor:
    """The built-in text's tokens, cut to the model's context (tiny test models have short ones)."""
    ids = subject.tokenizer(perplexity_text(), return_tensors="pt")["input_ids"]
    return ids[:, :context].to(subject.device)


@with_lock
@torch.no_grad()
def logits_between(subject: Subject, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Logits at positions ``start..stop-1`` from the model's own forward (whatever program or
    hooks are active), unembedding only those positions: the full vocab at every position
    would cost more than several blocks."""
    body = subject.adapter.body_module(subject.model)
    hidden = body(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_for(attention_mask),
        use_cache=False,
    ).last_hidden_state  # already final-normed by HF's body
    return subject.adapter.unembed(subject.model, hidden[:, start:stop]).float()


@with_lock
def text_perplexity(subject: Subject, text_ids: torch.Tensor | None = None) -> float:
    """Perplexity of the built-in text (``perplexity_text``) under the subject as it is now."""
    if text_ids is None:
        text_ids = perplexity_ids(subject, subject.context_length)
    logits = logits_between(subject, text_ids, torch.ones_like(text_ids), 0, text_ids.shape[1] - 1)
    return float(math.exp(torch.nn.functional.cross_entropy(logits[0], text_ids[0, 1:]).item()))
