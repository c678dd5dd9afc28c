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

from ..core.errors import NeuroMagicsError, ProgramError
from ..core.programs import parse_ranges
from ..core.runner import Capture, prepare, run
from ..core.subject import Subject, with_lock
from .interventions import CONTRAST_PREFIX

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


def parse_layers(layers: str | Sequence[int] | None, subject: Subject) -> list[int]:
    """Program steps from ``"all"``/None, a range spec (``6,12,18``, ``10-20``) or a list."""
    program = subject.program
    if layers is None or (isinstance(layers, str) and layers.strip() == "all"):
        return list(range(len(program)))
    try:
        if isinstance(layers, str):
            steps = parse_ranges(layers, len(program), unit="layer")
        else:
            steps = [int(step) for step in layers]
            bad = [step for step in steps if not 0 <= step < len(program)]
            if bad:
                raise ProgramError(f"Layer {bad[0]} is out of range: this model has layers 0-{len(program) - 1}.")
    except ProgramError as error:
        where = "" if program.is_identity else f" (layers count the {len(program)} steps of the current program)"
        raise NeuroMagicsError(f"--layers {layers!r}: {error}{where}") from None
    if not steps:
        raise NeuroMagicsError("No layers given: use --layers all, or a list like 6,12,18.")
    return sorted(set(steps))


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise NeuroMagicsError(f"Unknown {name} {value!r}: use one of {', '.join(choices)}.")


@with_lock
@torch.no_grad()
def collect(
    subject: Subject,
    texts: Sequence[str],
    steps: Sequence[int],
    *,
    site: str = "resid_pre",
    unit: str = "token",
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> Activations:
    """Capture ``site`` at program ``steps`` for every text, batched; ``on_batch(n_texts)``
    reports progress after each batch."""
    check_choice("site", site, VECTOR_SITES)
    check_choice("unit", unit, UNITS)
    texts = list(texts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise NeuroMagicsError("Every text must be non-empty: give one text per line.")
    steps = list(steps)
    stop = max(steps) + 1
    prefix_length = len(subject.tokenizer(CONTRAST_PREFIX)["input_ids"])
    per_layer: list[list[np.ndarray]] = [[] for _ in steps]
    text_index, positions, text_tokens = [], [], []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        encoded = subject.encode([CONTRAST_PREFIX + text for text in batch])
        inputs = prepare(subject, encoded["input_ids"], encoded["attention_mask"])
        output = run(subject, inputs, stop=stop, capture=Capture(sites=(site,), steps=steps, device="cpu",
                                                                 dtype=torch.float32), logits_at=None)
        captured = output.captures[site]  # [steps, batch, tokens, features]
        lengths = encoded["attention_mask"].sum(1).tolist()
        width = encoded["input_ids"].shape[1]
        for row, length in enumerate(lengths):
            first = width - length + prefix_length  # left padding, then the prefix
            if first >= width:
                raise NeuroMagicsError(f"Text {start + row} has no tokens of its own: give it some text.")
            ids = encoded["input_ids"][row, first:].tolist()
            text_tokens.append(subject.token_pieces(ids))
            vectors = captured[:, row, first:]
            if unit == "token":
                kept = vectors
                positions.extend(range(len(ids)))
                text_index.extend([start + row] * len(ids))
            else:
                kept = (vectors.mean(1) if unit == "mean" else vectors[:, -1])[:, None]
                positions.append(-1)
                text_index.append(start + row)
            for k in range(len(steps)):
                per_layer[k].append(kept[k].numpy())
        if on_batch is not None:
            on_batch(len(batch))
    program = subject.program
    return Activations(
        vectors=np.stack([np.concatenate(parts) for parts in per_layer]).astype(np.float32),
        steps=steps,
        blocks=[program.steps[s] for s in steps],
        site=site,
        unit=unit,
        text_index=np.asarray(text_index, dtype=np.int32),
        position=np.asarray(positions, dtype=np.int32),
        text_tokens=text_tokens,
    )
