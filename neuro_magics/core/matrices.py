"""The model's weight matrices as analyses read them: one block's attention weights per head
(however the family stores them: separate, fused or per-head interleaved), and one number per
``"<block>.<path>"`` matrix laid out as a block x matrix grid (pruning, quantization, model diffs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .adapters import linear_modules
from .errors import NeuroMagicsError
from .offload import weight_value
from .subject import Subject


def attention_matrices(subject: Subject, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``W_Q [heads, hd, d]``, ``W_K, W_V [kv heads, hd, d]``, ``W_O [heads, d, hd]`` of one block,
    as the family stores them (separate, fused or per-head interleaved)."""
    attention = subject.adapter.attention_module(subject.blocks[block])
    n, kv, hd, d = subject.n_heads, subject.n_kv_heads, subject.head_dim, subject.d_model
    modules = linear_modules(attention)
    if {"q_proj", "k_proj", "v_proj"} <= set(modules):
        q, k, v = (weight_value(modules[name]) for name in ("q_proj", "k_proj", "v_proj"))
    elif "qkv_proj" in modules:  # Phi-3: [q; k; v] along the output
        q, k, v = weight_value(modules["qkv_proj"]).split([n * hd, kv * hd, kv * hd])
    elif "c_attn" in modules:  # GPT-2: [q; k; v] along the output
        q, k, v = weight_value(modules["c_attn"]).split([n * hd, kv * hd, kv * hd])
    elif "query_key_value" in modules:  # GPT-NeoX: per head [q; k; v]
        per_head = weight_value(modules["query_key_value"]).reshape(n, 3, hd, d)
        q, k, v = (per_head[:, i].reshape(n * hd, d) for i in range(3))
    else:
        raise NeuroMagicsError(f"Weight views do not know where {type(attention).__name__} keeps its query, key "
                               "and value matrices.")
    output = weight_value(subject.adapter.output_projection(subject.blocks[block]))
    return (q.detach().reshape(n, hd, d), k.detach().reshape(kv, hd, d), v.detach().reshape(kv, hd, d),
            output.detach().reshape(d, n, hd).permute(1, 0, 2))


def matrix_grid(names: Sequence[str], values: Sequence[float]) -> tuple[np.ndarray, list[str], list[str]]:
    """One number per matrix named ``"<block>.<path>"`` as a ``[blocks, paths]`` grid (NaN where a
    block has no such matrix), with the block and path labels in first-seen order."""
    paths = list(dict.fromkeys(name.split(".", 1)[1] for name in names))
    blocks = list(dict.fromkeys(name.split(".", 1)[0] for name in names))
    grid = np.full((len(blocks), len(paths)), np.nan, dtype=np.float32)
    for name, value in zip(names, values):
        block, path = name.split(".", 1)
        grid[blocks.index(block), paths.index(path)] = value
    return grid, blocks, paths
