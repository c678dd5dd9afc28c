"""Before/after diffs: what a change (a layer program, a steering vector, ...) does to a model.

``compare`` measures the subject as it is now ("before") and inside ``with change():``
("after") on the same prompts: greedy continuations (first divergence marked), the
next-token top-k, the per-token log-prob change of the *original* continuation, the
perplexity of a short built-in text, and effective depth and parameter count.

The before side is one batched greedy generate (KV cache on), one teacher-forced forward of
its continuation and one perplexity forward, remembered per model state. The after side
reuses it: its teacher-forced forward over the before continuation gives the after side's
log-probs *and* its greedy continuation up to where the two part (speculative decoding with
the before side as the draft), so only the rows that part are generated, from there on. A
repeated diff of the default model (a brain-scan click) is drawable after about 1 CPU-s and
finished after about 3 (``bench/diff.py``); ``on_update`` streams it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from ..core.errors import NeuroMagicsError
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.scoring import default_prompts, logits_between, perplexity_ids, perplexity_text, text_perplexity
from ..core.subject import Subject, with_lock

_SIDES = ("before", "after")
DEFAULT_NEW_TOKENS = 12


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
    #: Prompts whose after continuation is still being generated (only in the partial results
    #: ``compare(on_update=...)`` streams; a returned or loaded result is complete).
    pending: tuple[int, ...] = ()

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
    on_update: Callable[[DiffResult], None] | None = None,
) -> DiffResult:
    """Diff the subject as it is now (or inside ``with before():``) against the subject
    inside ``with change():``.

    ``change`` is a zero-argument callable returning a context manager, e.g.
    ``lambda: subject.program_applied(program)``; it is entered once, and the subject is
    exactly as before when ``compare`` returns (also after an exception or interrupt),
    provided the context manager restores what it changed. ``prompts`` defaults to a
    built-in set of varied prompts. The before side of an unchanged model is remembered,
    so a second diff from the same state only measures the after side.

    ``on_update(partial)``, if given, sees the diff early: once the after side's cheap parts
    are known (one forward: log-probs, top-k, perplexity, and every continuation up to where
    it parts from the before one), then after each generated token; ``partial.pending``
    lists the prompts still generating.
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
    text_ids = perplexity_ids(subject, context)
    settings = (tuple(prompts), max_new_tokens, top_k, label_before)

    with before() if before is not None else nullcontext():
        metadata = run_metadata(subject, prompts, max_new_tokens=max_new_tokens, top_k=top_k,
                                perplexity_text=perplexity_text())
        cached = subject.cache(_BEFORE_SIDES, settings)
    steps = (0 if cached else max_new_tokens + 1) + max_new_tokens + 1
    with ProgressBar(steps, "compare", "step", leave=False) as bar:
        if cached is None:
            with before() if before is not None else nullcontext():
                before_tokens = _greedy(subject, encoded, max_new_tokens, bar)
                scored = _teacher_forced(encoded, before_tokens)
                before_side = _measure(subject, label_before, before_tokens, scored, top_k,
                                       _continuation_logits(subject, scored), text_perplexity(subject, text_ids))
                cached = subject.cache(_BEFORE_SIDES, settings, lambda: (scored, before_side), entries=_REMEMBERED)
            bar.update()
        scored, before_side = cached
        with change():
            logits = _continuation_logits(subject, scored)
            perplexity = text_perplexity(subject, text_ids)

            def show(tokens: torch.Tensor, pending: Sequence[int]) -> None:
                partial = _measure(subject, label_after, tokens, scored, top_k, logits, perplexity)
                on_update(DiffResult(prompts, before_side, partial, metadata, tuple(pending)))

            after_tokens = _greedy_reusing(subject, encoded, scored.targets, logits, bar,
                                           show if on_update is not None else None)
            after = _measure(subject, label_after, after_tokens, scored, top_k, logits, perplexity)
            metadata["interventions_after"] = [intervention.spec for intervention in subject.interventions]
        bar.update()
    metadata["program_after"] = after.program
    return DiffResult(prompts, before_side, after, metadata)


# -- the remembered before side ------------------------------------------------------------

#: The subject's cache namespace of before sides (per model state and settings).
_BEFORE_SIDES = "diffing.before_side"
_REMEMBERED = 4  # before sides kept per subject


# -- measurements ------------------------------------------------------------------------


class _TokenProgress(BaseStreamer):
    """Moves the bar once per generated token (generate first puts the prompt), and hands
    each step's tokens ``[rows]`` to ``on_token`` if given."""

    def __init__(self, bar: ProgressBar, on_token: Callable[[torch.Tensor], None] | None = None):
        self.bar, self.on_token, self.prompt_seen = bar, on_token, False

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_seen:
            self.bar.update()
            if self.on_token is not None:
                self.on_token(value.reshape(-1))
        self.prompt_seen = True

    def end(self) -> None:
        pass


@torch.no_grad()
def _greedy(subject: Subject, encoded: dict[str, torch.Tensor], max_new_tokens: int, bar: ProgressBar) -> torch.Tensor:
    """Batched greedy continuation [prompts, max_new_tokens]; -1 after the first end-of-sequence.
    The bar advances max_new_tokens steps, also when every row ends early."""
    done = bar.n
    output = subject.model.generate(
        **encoded, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,  # greedy, whatever the config says
        pad_token_id=subject.pad_token_id, use_cache=True, streamer=_TokenProgress(bar),
    )
    bar.update(done + max_new_tokens - bar.n)
    generated = output[:, encoded["input_ids"].shape[1]:]
    tokens = torch.full((generated.shape[0], max_new_tokens), -1, dtype=torch.long, device=generated.device)
    tokens[:, : generated.shape[1]] = generated
    return _cut_after_end(subject, tokens)


def _cut_after_end(subject: Subject, tokens: torch.Tensor) -> torch.Tensor:
    """``-1`` after each row's first end-of-sequence token (the end token itself is kept)."""
    eos = torch.tensor(subject.eos_token_ids, dtype=torch.long, device=tokens.device)
    is_eos = torch.isin(tokens, eos)
    after_eos = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
    return tokens.masked_fill(after_eos, -1)


#: Generation settings that make ``generate`` pick something other than the plain argmax.
_LOGITS_PROCESSING = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                      "bad_words_ids": None, "min_length": 0, "min_new_tokens": None, "forced_bos_token_id": None,
                      "forced_eos_token_id": None, "suppress_tokens": None, "begin_suppress_tokens": None,
                      "sequence_bias": None, "exponential_decay_length_penalty": None}


def _greedy_is_argmax(subject: Subject) -> bool:
    config = getattr(subject.model, "generation_config", None)
    return all(getattr(config, key, None) in (None, inactive) for key, inactive in _LOGITS_PROCESSING.items())


@torch.no_grad()
def _greedy_reusing(subject: Subject, encoded: dict[str, torch.Tensor], reference: torch.Tensor,
                    logits: torch.Tensor, bar: ProgressBar,
                    show: Callable[[torch.Tensor, Sequence[int]], None] | None = None) -> torch.Tensor:
    """The greedy continuation under the model as it is now, given its ``logits`` after every
    prefix of a ``reference`` continuation (a teacher-forced forward the diff needs anyway).

    Where the model's argmax agrees with the reference, the reference *is* its greedy
    continuation (speculative decoding with the other side as the draft); a row is decided up
    to its first disagreement plus the token chosen there. Only the rows still running after
    that are generated, from the earliest such point on: a change that alters little costs
    one forward instead of a token-by-token generation. Same tokens as ``_greedy``.

    ``show(tokens, pending)`` sees the continuations as far as they are known (``-1`` beyond)
    and the rows still generating: once decided, then after every generated token."""
    rows, length = reference.shape
    done = bar.n
    if not _greedy_is_argmax(subject):
        return _greedy(subject, encoded, length, bar)
    predicted = logits.argmax(-1)
    disagree = (predicted != reference) & (reference >= 0)  # past a reference's end nothing is compared
    diverged = disagree.any(dim=1)
    first = torch.where(diverged, disagree.long().argmax(dim=1), length)
    position = torch.arange(length, device=reference.device)
    tokens = torch.where(position < first[:, None], reference, -1)
    chosen = predicted.gather(1, first.clamp(max=length - 1)[:, None])[:, 0]
    tokens[diverged, first[diverged]] = chosen[diverged]
    eos = torch.tensor(subject.eos_token_ids, dtype=torch.long, device=tokens.device)
    running = diverged & ~torch.isin(chosen, eos) & (first < length - 1)
    keep = running.nonzero()[:, 0]
    if show is not None:
        show(_cut_after_end(subject, tokens), keep.tolist())
    if len(keep):
        start = int(first[running].min())  # every running row is known up to here; generate the rest
        prefix = tokens[keep, : start + 1]
        bar.update(done + start + 1 - bar.n)
        streamed = tokens.clone()
        position = [start + 1]

        def stream(step: torch.Tensor) -> None:
            streamed[keep, position[0]] = step.to(streamed.device)
            position[0] += 1
            if position[0] < length:  # the last token arrives with the finished result
                ended = torch.isin(streamed[keep], eos).any(dim=1)
                show(_cut_after_end(subject, streamed), keep[~ended].tolist())

        output = subject.model.generate(
            input_ids=torch.cat([encoded["input_ids"][keep], prefix], dim=1),
            attention_mask=torch.cat([encoded["attention_mask"][keep], torch.ones_like(prefix)], dim=1),
            max_new_tokens=length - start - 1, do_sample=False, num_beams=1, pad_token_id=subject.pad_token_id,
            use_cache=True, streamer=_TokenProgress(bar, stream if show is not None else None),
        )
        generated = output[:, encoded["input_ids"].shape[1] + start + 1:]
        tokens[keep, start + 1:] = -1
        tokens[keep, start + 1: start + 1 + generated.shape[1]] = generated
    bar.update(done + length - bar.n)
    return _cut_after_end(subject, tokens)


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


def _continuation_logits(subject: Subject, scored: _TeacherForced) -> torch.Tensor:
    """``[prompts, T, vocab]``: the model's logits after the prompt and every prefix of the
    scored continuation."""
    start = scored.prompt_length - 1
    return logits_between(subject, scored.input_ids, scored.attention_mask, start, start + scored.targets.shape[1])


def _measure(
    subject: Subject,
    label: str,
    tokens: torch.Tensor,
    scored: _TeacherForced,
    top_k: int,
    logits: torch.Tensor,
    perplexity: float,
) -> DiffSide:
    """One side's numbers; ``logits`` are its ``_continuation_logits`` of the scored continuation."""
    tokenizer = subject.tokenizer
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
        perplexity=perplexity,
        depth=len(subject.program),
        n_parameters=sum(p.numel() for p in subject.model.parameters()),
        program=str(subject.program),
    )
