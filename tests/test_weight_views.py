"""Weight views and simulated quantization (oracle 24 of tests/ORACLES.md).

A head's OV circuit is checked through the model's own modules: with attention forced onto
one token, what the head adds to the output is ``W_O^h W_V^h x`` (Llama: value projection,
then output projection of that head's slice, by HF's forward of those Linear layers). Norms and
spectra equal numpy on the slices taken here from the raw parameters. Rounding equals a numpy
per-row absmax computation; undo is bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.quantization import quantize
from neuro_magics.analyses.weights import MATRICES, weight_views
from neuro_magics.core.errors import NeuroMagicsError
from neuro_magics.core.interventions import reset_interventions


@pytest.fixture(params=("llama", "gpt2", "gpt_neox", "phi3"))
def small(request):
    from tiny_models import tiny_model, tiny_tokenizer

    return nm.Subject(tiny_model(request.param), tiny_tokenizer())


def _hand_heads(subject, block):
    """(W_Q, W_K, W_V [out, in] per head, W_O [d, hd] per head) from the raw parameters."""
    n, kv, hd, d = subject.n_heads, subject.n_kv_heads, subject.head_dim, subject.d_model
    attention = subject.adapter.attention_module(subject.blocks[block])
    params = dict(attention.named_parameters())
    family = subject.adapter.family
    if family == "gpt2":
        q, k, v = params["c_attn.weight"].detach().numpy().T.reshape(3, n, hd, d)
        o = params["c_proj.weight"].detach().numpy().T
    elif family == "gpt_neox":
        q, k, v = params["query_key_value.weight"].detach().numpy().reshape(n, 3, hd, d).transpose(1, 0, 2, 3)
        o = params["dense.weight"].detach().numpy()
    elif family == "phi3":
        fused = params["qkv_proj.weight"].detach().numpy()
        q, k, v = fused[:n * hd].reshape(n, hd, d), fused[n * hd:(n + kv) * hd].reshape(kv, hd, d), fused[(n + kv) * hd:].reshape(kv, hd, d)
        o = params["o_proj.weight"].detach().numpy()
    else:
        q = params["q_proj.weight"].detach().numpy().reshape(n, hd, d)
        k = params["k_proj.weight"].detach().numpy().reshape(kv, hd, d)
        v = params["v_proj.weight"].detach().numpy().reshape(kv, hd, d)
        o = params["o_proj.weight"].detach().numpy()
    heads_o = [o[:, h * hd:(h + 1) * hd] for h in range(n)]
    group = n // kv
    return [q[h] for h in range(n)], [k[h // group] for h in range(n)], [v[h // group] for h in range(n)], heads_o


def test_norms_and_spectra_equal_numpy_on_the_raw_slices(small):
    result = weight_views(small)
    for block in (0, small.n_layers - 1):
        q, k, v, o = _hand_heads(small, block)
        for h in range(small.n_heads):
            circuits = {"Q": q[h], "K": k[h], "V": v[h], "O": o[h], "OV": o[h] @ v[h], "QK": q[h].T @ k[h]}
            for index, name in enumerate(MATRICES):
                matrix = circuits[name].astype(np.float64)
                assert result.norms[block, h, index] == pytest.approx(np.linalg.norm(matrix), rel=1e-5)
                np.testing.assert_allclose(result.spectra[block, h, index],
                                           np.linalg.svd(matrix, compute_uv=False)[:small.head_dim], rtol=1e-4, atol=1e-6)
    assert result.mlp_norms.shape == (small.n_layers, len(result.mlp_names)) and (result.mlp_norms > 0).all()


def test_the_ov_circuit_is_what_the_llama_modules_compute():
    """With attention all on one token, head h adds ``o_proj`` of its slice of ``v_proj(x)``:
    run on every basis vector, those outputs are the OV matrix, by HF's own Linear layers."""
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    result = weight_views(subject)
    attention = subject.blocks[2].self_attn
    hd, group, d = subject.head_dim, subject.n_heads // subject.n_kv_heads, subject.d_model
    with torch.no_grad():
        values = attention.v_proj(torch.eye(d))
        for head in range(subject.n_heads):
            mixed = torch.zeros(d, subject.n_heads * hd)
            mixed[:, head * hd:(head + 1) * hd] = values[:, (head // group) * hd:(head // group + 1) * hd]
            circuit = attention.o_proj(mixed).T.double()  # column j: what the head writes for basis vector j
            assert result.norms[2, head, MATRICES.index("OV")] == pytest.approx(float(circuit.norm()), rel=1e-5)
            np.testing.assert_allclose(result.spectra[2, head, MATRICES.index("OV")],
                                       torch.linalg.svdvals(circuit)[:hd].numpy(), rtol=1e-4, atol=1e-6)


def test_rounding_equals_numpy_and_undo_is_bit_identical(small):
    from neuro_magics.core.adapters import weight_matrix

    original = {name: p.detach().clone() for name, p in small.model.named_parameters()}
    hand_errors = []
    for module in small.block_matrices().values():
        w = weight_matrix(module).detach().numpy().astype(np.float64)
        scale = np.abs(w).max(1, keepdims=True) / 7
        hand = np.clip(np.round(w / scale), -7, 7) * scale
        hand_errors.append(np.linalg.norm(w - hand) / np.linalg.norm(w))
    result = quantize(small, 4, diff=False, install=True)
    np.testing.assert_allclose(result.errors, hand_errors, rtol=1e-4)
    for module in small.block_matrices().values():
        assert max(len(np.unique(row)) for row in weight_matrix(module).detach().numpy()) <= 15
    reset_interventions(small)
    assert all(torch.equal(p, original[name]) for name, p in small.model.named_parameters())


def test_results_save_load_and_draw(small, tmp_path):
    views = weight_views(small)
    loaded = nm.load_result(views.save(tmp_path / "weights"))
    assert np.array_equal(loaded.spectra, views.spectra)
    rounding = quantize(small, 4, max_new_tokens=2)
    assert not small.interventions
    loaded = nm.load_result(rounding.save(tmp_path / "quantize"))
    assert np.array_equal(loaded.errors, rounding.errors) and loaded.diff.after.texts == rounding.diff.after.texts
    for result in (views, rounding):
        result.widget()
        assert result.figure().data
    assert views.figure(0, 1).data


def test_bad_quantization_input_is_one_line(small):
    for arguments, message in (({"bits": 3}, "bits must be 4 or 8"), ({"bits": 8, "layers": "9"}, "out of range")):
        with pytest.raises(NeuroMagicsError, match=message) as error:
            quantize(small, **arguments)
        assert "\n" not in str(error.value) and not small.interventions
