"""Attention patterns: the weights HF's own attention modules return, per program step.

Only eager attention forms the weights (SDPA and flash never materialise them), so
``eager_attention`` switches the model's implementation for one call and restores it;
``recording_attention`` hooks the attention modules of the original blocks and keeps
the weights of the steps asked for. ``head_scores`` turns patterns into the per-head
numbers people look for first (entropy, previous-token, duplicate-token, induction,
attention to the first token).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator

import numpy as np
import torch
from torch import nn

from ..core.errors import NeuroMagicsError
from ..core.subject import Subject

#: Families whose adapter ``attention`` path names something other than the module that
#: returns ``(attn_output, attn_weights)``: Gemma2's contribution is its post-attention norm.
_ATTENTION_MODULE = {"gemma2": "self_attn"}

HEAD_SCORES = ("entropy", "previous_token", "duplicate_token", "induction", "first_token")


def attention_module(subject: Subject, block: nn.Module) -> nn.Module:
    """The module of ``block`` whose output is ``(attn_output, attn_weights)``."""
    adapter = subject.adapter
    return adapter.submodule(block, _ATTENTION_MODULE.get(adapter.family, adapter.attention))


def n_heads(subject: Subject) -> tuple[int, int]:
    """(query heads, key/value heads) of the subject's attention."""
    config = subject.model.config
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head")
    return heads, getattr(config, "num_key_value_heads", None) or heads


@contextlib.contextmanager
def eager_attention(subject: Subject) -> Iterator[None]:
    """Run HF's eager attention inside the block (masks included: build inputs inside it),
    and restore the model's own implementation after, also on an exception or interrupt."""
    config = subject.model.config
    previous = config._attn_implementation
    if previous == "eager":
        yield
        return
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = previous


@contextlib.contextmanager
def recording_attention(subject: Subject, n_steps: int, keep_steps: Collection[int]) -> Iterator[dict[int, torch.Tensor]]:
    """Collect ``{step: weights [batch, heads, query, key]}`` (float32, CPU) while a program
    of ``n_steps`` steps runs once.

    Hooks sit on the ORIGINAL blocks' attention modules, which every occurrence of a block
    shares, so the k-th attention call of the run is program step k. The hooks are removed
    on the way out, also after an exception or interrupt.
    """
    patterns: dict[int, torch.Tensor] = {}
    calls = {"count": 0}
    wanted = set(keep_steps)

    def hook(module, args, output):
        step = calls["count"]
        calls["count"] += 1
        if step not in wanted:
            return
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise NeuroMagicsError(
                f"{type(module).__name__} returned no attention weights; it needs eager attention."
            )
        patterns[step] = weights.detach().to(device="cpu", dtype=torch.float32)

    modules = {id(m): m for m in (attention_module(subject, block) for block in subject.blocks)}
    handles = []
    try:
        for module in modules.values():
            handles.append(module.register_forward_hook(hook))
        yield patterns
    finally:
        for handle in handles:
            handle.remove()
    if calls["count"] != n_steps:
        raise NeuroMagicsError(
            f"Expected {n_steps} attention calls, saw {calls['count']}: patterns cannot be matched to steps."
        )


def head_scores(patterns: np.ndarray, token_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Per (step, head) scores of ``patterns [steps, heads, T, T]`` for one unpadded prompt.

    - entropy: mean over queries of the attention distribution's entropy (nats);
    - previous_token: mean attention from each query to the token just before it;
    - duplicate_token: mean attention to earlier copies of the query's own token;
    - induction: mean attention to the token right after an earlier copy of the query's
      token (the "A B ... A -> B" pattern);
    - first_token: mean attention to position 0 (the usual attention sink).

    Queries with nothing to attend to for a score (no earlier copy, ...) are left out;
    a score with no such query at all is NaN.
    """
    weights = torch.as_tensor(patterns, dtype=torch.float32)
    n_tokens = weights.shape[-1]
    ids = torch.as_tensor(token_ids)
    query, key = torch.arange(n_tokens)[:, None], torch.arange(n_tokens)[None, :]
    earlier = key < query
    same_token = (ids[:, None] == ids[None, :]) & earlier
    # key j+1 follows an earlier copy j of the query's token
    after_copy = torch.zeros_like(same_token)
    after_copy[:, 1:] = same_token[:, :-1]
    after_copy &= key <= query
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1).mean(-1)
    masks = {
        "previous_token": key == query - 1,
        "duplicate_token": same_token,
        "induction": after_copy,
        "first_token": (key == 0) & (query > 0),
    }
    scores = {"entropy": entropy}
    for name, mask in masks.items():
        queries = mask.any(-1)
        if not queries.any():
            scores[name] = torch.full(weights.shape[:2], float("nan"))
            continue
        per_query = (weights * mask).sum(-1)[..., queries]
        scores[name] = per_query.mean(-1)
    return {name: scores[name].numpy().astype(np.float32) for name in HEAD_SCORES}
