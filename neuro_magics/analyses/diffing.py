"""Before/after diffs: what a change (a layer program, a steering vector, ...) does to a model.

``compare`` measures the subject as it is now ("before") and inside ``with change():``
("after") on the same prompts: greedy continuations (first divergence marked), the
next-token top-k, the per-token log-prob change of the *original* continuation, the
perplexity of a short built-in text, and effective depth and parameter count. Each side
is one batched greedy generate (KV cache on), one teacher-forced forward and one
perplexity forward, so a diff of the default model takes a few seconds on CPU.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from ..core.errors import NeuroMagicsError
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import position_ids_for
from ..core.subject import Subject, with_lock

_PROBES = Path(__file__).parent.parent / "probes" / "diff_prompts.json"
_SIDES = ("before", "after")
DEFAULT_NEW_TOKENS = 12


@lru_cache(maxsize=1)
def _probes() -> dict[str, Any]:
    return json.loads(_PROBES.read_text(encoding="utf-8"))


def default_prompts() -> list[str]:
    """The built-in varied prompts: facts, arithmetic, code, a list, a story, reasoning, translation."""
    return list(_probes()["prompts"])


def perplexity_text() -> str:
    """The short neutral text whose perplexity every diff reports."""
    return _probes()["perplexity_text"]


@dataclass
class DiffSide:
    """One side of a diff. ``logprobs`` scores the *before* continuation on both sides."""

    label: str
    tokens: np.ndarray  # [prompts, max_new_tokens] int32 greedy continuation, -1 past its end
    pieces: list[list[str]]  # the continuation's tokens as text
    texts: list[str]  # the continuation decoded (special tokens skipped)
    topk_ids: np.ndarray  # [prompts, k] int32 next-token candidates after the prompt
    topk_probs: np.ndarray  # [prompts, k] float32
    topk_pieces: list[list[str]]
    logprobs: np.ndarray  # [prompts, max_new_tokens] float32 log p(original continuation), NaN past its end
    perplexity: float
    depth: int  # blocks a forward runs (the program's length)
    n_parameters: int  # distinct parameters: a zero-copy program keeps this unchanged
    program: str

    @property
    def lengths(self) -> np.ndarray:
        return (self.tokens >= 0).sum(axis=1)

    _ARRAYS = ("tokens", "topk_ids", "topk_probs", "logprobs")

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._ARRAYS}

    def fields(self) -> dict[str, Any]:
        return {
            "label": self.label, "pieces": self.pieces, "texts": self.texts, "topk_pieces": self.topk_pieces,
            "perplexity": self.perplexity, "depth": self.depth, "n_parameters": self.n_parameters,
            "program": self.program,
        }


@dataclass(repr=False, eq=False)
class DiffResult(Result):
    """A before/after diff of a change on the same prompts; its repr is the diff widget."""

    kind = "diff"

    prompts: list[str]
    before: DiffSide
    after: DiffSide
    metadata: dict[str, Any]

    # -- derived numbers ------------------------------------------------------------

    @property
    def divergence(self) -> np.ndarray:
        """Per prompt, the first continuation position where the sides differ (-1: identical)."""
        return first_divergence(self.before.tokens, self.after.tokens)

    @property
    def logprob_change(self) -> np.ndarray:
        """[prompts, tokens]: after minus before log-prob of the original continuation (NaN past its end)."""
        return self.after.logprobs - self.before.logprobs

    @property
    def n_changed(self) -> int:
        return int((self.divergence >= 0).sum())

    # -- Result protocol -------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"{name}_{key}": value for name in _SIDES for key, value in getattr(self, name).arrays().items()}

    def _fields(self) -> dict[str, Any]:
        return {"prompts": self.prompts, **{name: getattr(self, name).fields() for name in _SIDES}}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> DiffResult:
        sides = {
            name: DiffSide(**fields[name], **{key: arrays[f"{name}_{key}"] for key in DiffSide._ARRAYS})
            for name in _SIDES
        }
        return cls(list(fields["prompts"]), sides["before"], sides["after"], metadata)

    def to_numpy(self) -> np.ndarray:
        """The per-token log-prob change of the original continuation, [prompts, tokens]."""
        return self.logprob_change

    def to_pandas(self):
        """One row per prompt and position of the original continuation (tidy)."""
        import pandas as pd

        divergence = self.divergence
        rows = []
        for p, prompt in enumerate(self.prompts):
            for t in range(int(self.before.lengths[p])):
                after_piece = self.after.pieces[p][t] if t < len(self.after.pieces[p]) else None
                rows.append({
                    "prompt_index": p,
                    "prompt": prompt,
                    "position": t,
                    "token": self.before.pieces[p][t],
                    "token_after": after_piece,
                    "logprob_before": float(self.before.logprobs[p, t]),
                    "logprob_after": float(self.after.logprobs[p, t]),
                    "logprob_change": float(self.logprob_change[p, t]),
                    "diverged": bool(0 <= divergence[p] <= t),
                })
        return pd.DataFrame(rows)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per side: perplexity, depth, parameter count, program, continuations changed."""
        return {
            side.label: {
                "perplexity": side.perplexity, "depth": side.depth, "parameters": side.n_parameters,
                "program": side.program,
            }
            for side in (self.before, self.after)
        }

    def __repr__(self) -> str:
        b, a = self.before, self.after
        return (
            f"DiffResult({b.label} -> {a.label}: {self.n_changed}/{len(self.prompts)} continuations changed, "
            f"perplexity {b.perplexity:.2f} -> {a.perplexity:.2f}, depth {b.depth} -> {a.depth}, "
            f"parameters {b.n_parameters:,} -> {a.n_parameters:,})"
        )


def first_divergence(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """First position where two ``-1``-padded token rows differ, ``-1`` where they are equal."""
    differs = before != after
    return np.where(differs.any(axis=1), differs.argmax(axis=1), -1)


@with_lock
def compare(
    subject: Subject,
    change: Callable[[], AbstractContextManager],
    prompts: Sequence[str] | None = None,
    *,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
    top_k: int = 5,
    label_before: str = "before",
    label_after: str = "after",
    before: Callable[[], AbstractContextManager] | None = None,
) -> DiffResult:
    """Diff the subject as it is now (or inside ``with before():``) against the subject
    inside ``with change():``.

    ``change`` is a zero-argument callable returning a context manager, e.g.
    ``lambda: subject.program_applied(program)``; it is entered once, and the subject is
    exactly as before when ``compare`` returns (also after an exception or interrupt),
    provided the context manager restores what it changed. ``prompts`` defaults to a
    built-in set of varied prompts. The before side of an unchanged model is remembered,
    so a second diff from the same state only measures the after side.
    """
    if prompts is None:
        prompts = default_prompts()
    elif isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if max_new_tokens < 1:
        raise NeuroMagicsError(f"max_new_tokens must be at least 1 (got {max_new_tokens}).")
    if not 1 <= top_k <= subject.vocab_size:
        raise NeuroMagicsError(f"top_k must be between 1 and the vocabulary size {subject.vocab_size} (got {top_k}).")
    encoded = subject.encode(prompts)
    context = subject.context_length
    if context is not None and encoded["input_ids"].shape[1] + max_new_tokens > context:
        raise NeuroMagicsError(
            f"Prompts of {encoded['input_ids'].shape[1]} tokens plus {max_new_tokens} new tokens exceed this "
            f"model's context of {context} tokens: shorten the prompts or lower max_new_tokens."
        )
    text_ids = _perplexity_ids(subject, context)
    settings = (tuple(prompts), max_new_tokens, top_k, label_before)

    with before() if before is not None else nullcontext():
        metadata = run_metadata(subject, prompts, max_new_tokens=max_new_tokens, top_k=top_k,
                                perplexity_text=perplexity_text())
        key = (state_fingerprint(subject), settings)
        cached = _before_sides.setdefault(subject, {}).get(key)
    steps = (0 if cached else max_new_tokens + 1) + max_new_tokens + 1
    with ProgressBar(steps, "compare", "step", leave=False) as bar:
        if cached is None:
            with before() if before is not None else nullcontext():
                before_tokens = _greedy(subject, encoded, max_new_tokens, bar)
                scored = _teacher_forced(encoded, before_tokens)
                before_side = _measure(subject, label_before, encoded, before_tokens, scored, text_ids, top_k)
            bar.update()
            cached = _remember(subject, key, (scored, before_side))
        scored, before_side = cached
        with change():
            after_tokens = _greedy(subject, encoded, max_new_tokens, bar)
            after = _measure(subject, label_after, encoded, after_tokens, scored, text_ids, top_k)
            metadata["interventions_after"] = [intervention.spec for intervention in subject.interventions]
        bar.update()
    metadata["program_after"] = after.program
    return DiffResult(prompts, before_side, after, metadata)


# -- the remembered before side ------------------------------------------------------------

_before_sides: weakref.WeakKeyDictionary[Subject, dict[tuple, tuple[_TeacherForced, DiffSide]]] = (
    weakref.WeakKeyDictionary())
_REMEMBERED = 4  # before sides kept per subject


def state_fingerprint(subject: Subject) -> tuple:
    """What the model computes with: its program, its interventions, and a checksum of every
    weight (about 30 ms on the default model), so an in-place weight edit is noticed too."""
    with torch.no_grad():
        sums = torch.stack([p.detach().float().sum() for p in subject.model.parameters()]).cpu().numpy()
    specs = json.dumps([intervention.spec for intervention in subject.interventions], sort_keys=True, default=str)
    return (id(subject.model), tuple(subject.program.steps), specs, sums.tobytes())


def _remember(subject: Subject, key: tuple, value: tuple[_TeacherForced, DiffSide]) -> tuple[_TeacherForced, DiffSide]:
    remembered = _before_sides.setdefault(subject, {})
    remembered[key] = value
    while len(remembered) > _REMEMBERED:
        remembered.pop(next(iter(remembered)))
    return value


# -- measurements ------------------------------------------------------------------------


class _TokenProgress(BaseStreamer):
    """Moves the bar once per generated token (generate first puts the prompt)."""

    def __init__(self, bar: ProgressBar):
        self.bar, self.prompt_seen = bar, False

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_seen:
            self.bar.update()
        self.prompt_seen = True

    def end(self) -> None:
        pass


@torch.no_grad()
def _greedy(subject: Subject, encoded: dict[str, torch.Tensor], max_new_tokens: int, bar: ProgressBar) -> torch.Tensor:
    """Batched greedy continuation [prompts, max_new_tokens]; -1 after the first end-of-sequence.
    The bar advances max_new_tokens steps, also when every row ends early."""
    done = bar.n
    output = subject.model.generate(
        **encoded, max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=subject.pad_token_id, use_cache=True, streamer=_TokenProgress(bar),
    )
    bar.update(done + max_new_tokens - bar.n)
    generated = output[:, encoded["input_ids"].shape[1]:]
    tokens = torch.full((generated.shape[0], max_new_tokens), -1, dtype=torch.long, device=generated.device)
    tokens[:, : generated.shape[1]] = generated
    eos = torch.tensor(subject.eos_token_ids, dtype=torch.long, device=tokens.device)
    is_eos = torch.isin(tokens, eos)
    after_eos = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # keeps the end token itself
    return tokens.masked_fill(after_eos, -1)


def _perplexity_ids(subject: Subject, context: int | None) -> torch.Tensor:
    """The built-in text's tokens, cut to the model's context (tiny test models have short ones)."""
    ids = subject.tokenizer(perplexity_text(), return_tensors="pt")["input_ids"]
    return ids[:, :context].to(subject.device)


@dataclass
class _TeacherForced:
    """The prompts followed by the *before* continuation, scored identically on both sides."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor  # [prompts, T] continuation tokens, -1 past the end
    prompt_length: int


def _teacher_forced(encoded: dict[str, torch.Tensor], continuation: torch.Tensor) -> _TeacherForced:
    valid = continuation >= 0
    return _TeacherForced(
        input_ids=torch.cat([encoded["input_ids"], continuation.clamp(min=0)], dim=1),
        attention_mask=torch.cat([encoded["attention_mask"], valid.long()], dim=1),
        targets=continuation,
        prompt_length=encoded["input_ids"].shape[1],
    )


@torch.no_grad()
def _logits(subject: Subject, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Logits at positions ``start..stop-1`` from the model's own forward (whatever program or
    hooks are active), unembedding only those positions: the full vocab at every position
    would cost more than several blocks."""
    body = subject.adapter.body_module(subject.model)
    hidden = body(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_for(attention_mask),
        use_cache=False,
    ).last_hidden_state  # already final-normed by HF's body
    return subject.adapter.unembed(subject.model, hidden[:, start:stop]).float()


def text_perplexity(subject: Subject, text_ids: torch.Tensor | None = None) -> float:
    """Perplexity of the built-in text (``perplexity_text``) under the subject as it is now."""
    if text_ids is None:
        text_ids = _perplexity_ids(subject, subject.context_length)
    logits = _logits(subject, text_ids, torch.ones_like(text_ids), 0, text_ids.shape[1] - 1)
    return float(math.exp(torch.nn.functional.cross_entropy(logits[0], text_ids[0, 1:]).item()))


def _measure(
    subject: Subject,
    label: str,
    encoded: dict[str, torch.Tensor],
    tokens: torch.Tensor,
    scored: _TeacherForced,
    text_ids: torch.Tensor,
    top_k: int,
) -> DiffSide:
    tokenizer = subject.tokenizer
    start = scored.prompt_length - 1
    logits = _logits(subject, scored.input_ids, scored.attention_mask, start, start + scored.targets.shape[1])
    valid = scored.targets >= 0
    picked = logits.gather(-1, scored.targets.clamp(min=0)[..., None])[..., 0]
    logprobs = (picked - logits.logsumexp(-1)).masked_fill(~valid, float("nan"))
    top = logits[:, 0].softmax(-1).topk(top_k, dim=-1)


    rows = tokens.cpu().tolist()
    kept = [[t for t in row if t >= 0] for row in rows]
    return DiffSide(
        label=label,
        tokens=tokens.cpu().numpy().astype(np.int32),
        pieces=[subject.token_pieces(row) for row in kept],
        texts=tokenizer.batch_decode(kept, skip_special_tokens=True),
        topk_ids=top.indices.cpu().numpy().astype(np.int32),
        topk_probs=top.values.cpu().numpy().astype(np.float32),
        topk_pieces=[subject.token_pieces(row) for row in top.indices.cpu().tolist()],
        logprobs=logprobs.cpu().numpy().astype(np.float32),
        perplexity=text_perplexity(subject, text_ids),
        depth=len(subject.program),
        n_parameters=sum(p.numel() for p in subject.model.parameters()),
        program=str(subject.program),
    )
