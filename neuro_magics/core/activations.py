"""Activation vectors of many texts at chosen layers: what projections and probes are made of.

Texts run through the residual-stream runner in left-padded batches, captures go to the
CPU in float32, and each text is read after ``CONTRAST_PREFIX`` (as steering's contrast
vectors are): many models park an outsized "attention sink" state on the first token
(the default model's first residual has a norm near 22,000 against at most ~900
elsewhere), which would dominate any projection or mean. The prefix takes that position
and is left out, so every token of the text itself is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .distributed import ShardedWork, check_workers, run_units
from .errors import NeuroMagicsError, ProgramError
from .programs import parse_ranges
from .runner import Capture, prepare, run
from .subject import Subject, with_lock
from .reading import CONTRAST_PREFIX
from . import memory

#: Sites whose captures are one vector per token (the ones a projection or probe can read).
VECTOR_SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out", "neurons")
UNITS = ("token", "mean", "last")
#: Texts per runner batch.
BATCH_SIZE = 16


@dataclass
class Activations:
    """``vectors[layer, point, feature]`` at ``steps`` (program positions) of ``site``.

    A point is a token (``unit="token"``) or a whole text (``"mean"`` over its tokens, or
    its ``"last"`` token). ``text_index`` and ``position`` say where each point comes from
    (``position`` is -1 for a whole text); ``text_tokens`` are each text's token strings.
    """

    vectors: np.ndarray  # [layers, points, features] float32
    steps: list[int]
    blocks: list[int]
    site: str
    unit: str
    text_index: np.ndarray  # [points] int32
    position: np.ndarray  # [points] int32
    text_tokens: list[list[str]]


def parse_steps(steps: str | Sequence[int] | None, subject: Subject) -> list[int]:
    """Program steps (positions in the current layer program, not blocks) from ``"all"``/None,
    a range spec (``6,12,18``, ``10-20``) or a list."""
    program = subject.program
    if steps is None or (isinstance(steps, str) and steps.strip() == "all"):
        return list(range(len(program)))
    try:
        if isinstance(steps, str):
            chosen = parse_ranges(steps, len(program), unit="step", owner="the current program")
        else:
            chosen = [int(step) for step in steps]
            bad = [step for step in chosen if not 0 <= step < len(program)]
            if bad:
                raise ProgramError(f"Step {bad[0]} is out of range: the current program has steps 0-{len(program) - 1}.")
    except ProgramError as error:
        raise NeuroMagicsError(f"--steps {steps!r}: {error}") from None
    if not chosen:
        raise NeuroMagicsError("No steps given: use --steps all, or a list like 6,12,18.")
    return sorted(set(chosen))


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise NeuroMagicsError(f"Unknown {name} {value!r}: use one of {', '.join(choices)}.")


#: Share of the free RAM the activations may take (the rest is headroom for everything else).
MEMORY_FRACTION = 0.6


@with_lock
def collect(
    subject: Subject,
    texts: Sequence[str],
    steps: Sequence[int],
    *,
    site: str = "resid_pre",
    unit: str = "token",
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
) -> Activations:
    """Capture ``site`` at program ``steps`` for every text, batched; ``on_batch(n_texts)``
    reports progress after each batch. Refuses up front what would not fit in memory.
    ``workers``: run the batches on that many Ray workers (at ``ray_address``, else a local
    cluster), each with its own copy of the model; the vectors are the same."""
    check_choice("site", site, VECTOR_SITES)
    check_choice("unit", unit, UNITS)
    check_workers(subject, workers, ray_address)
    texts = list(texts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise NeuroMagicsError("Every text must be non-empty: give one text per line.")
    steps = list(steps)
    prefix_length = len(subject.tokenizer(CONTRAST_PREFIX)["input_ids"])
    lengths = [len(ids) - prefix_length for ids in subject.tokenizer([CONTRAST_PREFIX + t for t in texts])["input_ids"]]
    if min(lengths) < 1:
        raise NeuroMagicsError(f"Text {lengths.index(min(lengths))} has no tokens of its own: give it some text.")
    points = lengths if unit == "token" else [1] * len(texts)
    offsets = np.concatenate([[0], np.cumsum(points)]).astype(int)
    _check_memory(len(steps), int(offsets[-1]), _width(subject, site))
    vectors = np.empty((len(steps), int(offsets[-1]), _width(subject, site)), dtype=np.float32)
    text_index = np.repeat(np.arange(len(texts), dtype=np.int32), points)
    positions = (np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]) if unit == "token"
                 else np.full(len(texts), -1, dtype=np.int32))
    text_tokens: list[list[str]] = [[] for _ in texts]

    def record(batch: tuple[int, tuple[str, ...], tuple[int, ...]], result: tuple[np.ndarray, list[list[str]]]) -> None:
        start, batch_texts, _ = batch
        batch_vectors, pieces = result
        vectors[:, offsets[start]:offsets[start + len(batch_texts)]] = batch_vectors
        text_tokens[start:start + len(batch_texts)] = pieces
        if on_batch is not None:
            on_batch(len(batch_texts))

    batches = [(start, tuple(texts[start:start + batch_size]), tuple(lengths[start:start + batch_size]))
               for start in range(0, len(texts), batch_size)]
    run_units(subject, ShardedWork(_batch_reader, (steps, site, unit)), batches,
              [sum(batch[2]) for batch in batches], workers=workers, ray_address=ray_address, on_result=record)
    program = subject.program
    return Activations(vectors=vectors, steps=steps, blocks=[program.steps[s] for s in steps], site=site, unit=unit,
                       text_index=text_index, position=positions, text_tokens=text_tokens)


def _batch_reader(subject: Subject, steps: list[int], site: str, unit: str
                  ) -> Callable[[tuple[int, tuple[str, ...], tuple[int, ...]]], tuple[np.ndarray, list[list[str]]]]:
    """A batch ``(start, texts, own token counts)`` -> its points' vectors ``[steps, points,
    features]`` and each text's token pieces: what one process or a Ray worker runs."""

    @torch.no_grad()
    def read(batch: tuple[int, tuple[str, ...], tuple[int, ...]]) -> tuple[np.ndarray, list[list[str]]]:
        _, texts, lengths = batch
        encoded = subject.encode([CONTRAST_PREFIX + text for text in texts])
        inputs = prepare(subject, encoded["input_ids"], encoded["attention_mask"])
        output = run(subject, inputs, stop=max(steps) + 1, logits_at=None,
                     capture=Capture(sites=(site,), steps=steps, device="cpu", dtype=torch.float32))
        captured = output.captures[site]  # [steps, batch, tokens, features]
        width = encoded["input_ids"].shape[1]
        kept, pieces = [], []
        for row, length in enumerate(lengths):
            first = width - length  # left padding and the prefix come before
            pieces.append(subject.token_pieces(encoded["input_ids"][row, first:].tolist()))
            own = captured[:, row, first:]
            kept.append(own if unit == "token" else (own.mean(1) if unit == "mean" else own[:, -1])[:, None])
        return torch.cat(kept, dim=1).numpy(), pieces

    return read


def _width(subject: Subject, site: str) -> int:
    if site != "neurons":
        return subject.d_model
    module = subject.adapter.submodule(subject.blocks[0], subject.adapter.neurons)
    return module.in_features if isinstance(module, torch.nn.Linear) else module.weight.shape[0]


def _check_memory(n_steps: int, n_points: int, width: int) -> None:
    """Refuse in one line activations that would not fit: float32 on the CPU, all steps at once."""
    need, available = 4 * n_steps * n_points * width, memory.available_memory()
    if need > MEMORY_FRACTION * available:
        gib = 2**30
        raise NeuroMagicsError(
            f"{n_steps} steps x {n_points} points x {width} features need {need / gib:.1f} GiB but "
            f"{available / gib:.1f} GiB is free: pick fewer steps (--steps 6,12,18), fewer texts, or --unit text.")
