"""The engine in bfloat16 and float16 on CPU, each analysis against itself in float32.

Oracle: the same public function on a float32 copy of the same weights (a different dtype is
a different computation; float32 is 2**16 times finer), plus HF's own forward in half
precision for the runner. Tolerances, from the unit roundoff u (bfloat16 2**-8 = 3.9e-3,
float16 2**-11 = 4.9e-4), relative to the scale of each quantity:

- weights rounded once to the half dtype are off by at most u/2 each, so a matrix norm by at
  most u/2; a circuit (product of two) by about u: norms of weight views within ``u``.
- the residual stream after 4 blocks: each block rounds its inputs, weights and outputs
  (a few u, partly cancelling; measured 1.7-2.9 u): within ``4 u`` of max |resid|.
- logits, the patched logit difference, brainscan log-probabilities (log-softmax taken in
  float32) and probabilities inherit the stream's error through the unembedding: within
  ``4 u`` of the logit scale (probabilities: of 1).
- checkup's mean residual norm and attention entropy are sums over tokens accumulated in
  float32: within ``4 u`` relative.
- the runner in half precision runs HF's modules exactly as HF's forward does: bit-identical.
Measured on llama, gpt2, gemma2: errors 0.3-0.7 of these bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuro_magics as nm
from tiny_models import tiny_model, tiny_tokenizer

ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
CASES = [("llama", torch.bfloat16), ("gpt2", torch.bfloat16), ("gemma2", torch.bfloat16), ("llama", torch.float16)]
ITEMS = [{"prompt": "ab", "answer": "cd"}, {"prompt": "The cat sat on the", "answer": "mat"}]
TEXTS = ["The cat sat on the mat.", "One two three four five."]


@pytest.fixture(params=CASES, ids=[f"{f}-{str(d)[6:]}" for f, d in CASES])
def pair(request):
    """(float32 subject, half subject, unit roundoff): the same weights in both dtypes."""
    family, dtype = request.param
    full = nm.Subject(tiny_model(family), tiny_tokenizer())
    half = nm.Subject(tiny_model(family).to(dtype), tiny_tokenizer())
    assert half.dtype == dtype
    return full, half, ROUNDOFF[dtype]


def _within(half, full, bound, what):
    half = np.asarray(half, dtype=np.float64)
    full = np.broadcast_to(np.asarray(full, dtype=np.float64), half.shape)
    assert np.array_equal(np.isnan(half), np.isnan(full)), what
    error = np.nanmax(np.abs(half - full))
    assert error <= bound, f"{what}: {error:.3g} > {bound:.3g}"


def test_scan_and_runner(pair):
    full, half, u = pair
    scans = [nm.scan(s, "hello there friend", sites="resid,attn,mlp", lens=True, progress=False) for s in (full, half)]
    resid = scans[0].captures["resid_post"]
    assert scans[1].captures["resid_post"].dtype == np.float32
    _within(scans[1].captures["resid_post"], resid, 4 * u * np.abs(resid).max(), "resid_post")
    _within(scans[1].top_probs, scans[0].top_probs, 4 * u, "lens top probabilities")
    ids = torch.tensor([[5, 17, 33, 8, 61, 9], [7, 7, 40, 2, 90, 11]])
    logits = [nm.run(s, nm.prepare(s, ids), logits_at="all").logits for s in (full, half)]
    assert logits[1].dtype == half.dtype
    _within(logits[1].float(), logits[0], 4 * u * logits[0].abs().max().item(), "logits")
    with torch.no_grad():
        assert torch.equal(logits[1], half.model(ids).logits)


def test_patch_and_brainscan(pair):
    full, half, u = pair
    patched = [nm.patch(s, "ab cdefgh", "ab cdXfgh", ("e", "X"), progress=False).patched_metric for s in (full, half)]
    scale = max(np.abs(patched[0]).max(), 1.0)
    _within(patched[1], patched[0], 4 * u * scale, "patched logit difference")
    scores = [nm.brainscan(s, items=ITEMS, layers="1:3", max_new_tokens=3, progress=False).scores for s in (full, half)]
    _within(scores[1], scores[0], 4 * u * max(np.nanmax(np.abs(scores[0])), 1.0), "brainscan log-probabilities")


def test_weight_views_and_checkup(pair):
    full, half, u = pair
    views = [nm.weight_views(s) for s in (full, half)]
    _within(views[1].norms / views[0].norms, 1.0, u, "weight view norms (relative)")
    _within(views[1].mlp_norms / views[0].mlp_norms, 1.0, u / 2, "MLP norms (relative)")
    checkups = [nm.checkup(s, TEXTS, max_texts=2, max_tokens=16, spectra=False) for s in (full, half)]
    for field in ("resid_norm", "entropy"):
        a, b = getattr(checkups[0], field), getattr(checkups[1], field)
        _within(b, a, 4 * u * np.nanmax(np.abs(a)), f"checkup {field}")
