"""Attention patterns: the weights HF's own attention modules return, per program step.

Only eager attention forms the weights (SDPA and flash never materialise them), so a call
that needs them runs inside ``subject.attention_implementation("eager")``; the runner's
``attn_weights`` site captures them per step. ``head_scores`` turns patterns into the per-head
numbers people look for first (entropy, previous-token, duplicate-token, induction,
attention to the first token).
"""

from __future__ import annotations

import numpy as np
import torch

HEAD_SCORES = ("entropy", "previous_token", "duplicate_token", "induction", "first_token")


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
