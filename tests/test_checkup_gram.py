"""The checkup's head gram without writing the heads' outputs into the stream. Oracle: the
written vectors ``W_O,h h`` formed by hand in float64 and their inner products summed over
tokens, on heads of different scales with a shared offset (a cancellation-prone case), a
non-square output projection per head, and more tokens than one chunk (a partial last chunk)."""

from __future__ import annotations

import numpy as np
import torch

from neuro_magics.analyses.checkup import passes


def test_head_gram_equals_the_hand_gram_of_the_written_vectors_over_several_chunks(monkeypatch):
    monkeypatch.setattr(passes, "GRAM_CHUNK", 64)
    generator = torch.Generator().manual_seed(1)
    tokens, n_heads, head_dim, d_model = 64 * 3 + 29, 3, 5, 7
    scales = torch.tensor([1.0, 3.0, 0.2])[None, :, None]
    heads = (torch.randn(tokens, n_heads, head_dim, generator=generator) + 2.0) * scales
    out_proj = torch.randn(n_heads, d_model, head_dim, generator=generator)
    written = np.einsum("hde,mhe->hmd", out_proj.double().numpy(), heads.double().numpy()).reshape(n_heads, -1)
    hand = written @ written.T
    gram = passes.head_gram(heads, passes.output_gram(out_proj))
    assert gram.dtype == torch.float64 and gram.shape == (n_heads, n_heads)
    pairs = hand[~np.eye(n_heads, dtype=bool)]
    assert np.abs(pairs).min() > 1e-3 * np.abs(hand).max()  # every pair counts
    np.testing.assert_allclose(gram.numpy(), hand, rtol=2e-6)
