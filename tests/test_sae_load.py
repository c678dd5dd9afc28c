"""Published SAE formats, interval samples, search by text and the feature dashboard (issue 16).

Oracles: encode/decode written here in numpy from the raw arrays the test itself writes in
SAELens's and sparsify's file layouts; our own trained SAE exported in SAELens format and
loaded back gives the same features; interval samples lie in their band; search by text
equals encoding activations captured by a hook written here on HF's block.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import neuro_magics as nm
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.core.errors import NeuroMagicsError
from sae_oracle import hand_encode
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [f"the cat {i} sat on the mat while {i * 7} dogs ran home" for i in range(30)]


@pytest.fixture
def llama():
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def _random_arrays(d: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W_enc": rng.normal(size=(d, width)).astype(np.float32) / np.sqrt(d),
            "b_enc": rng.normal(scale=0.1, size=width).astype(np.float32),
            "W_dec": rng.normal(size=(width, d)).astype(np.float32) / np.sqrt(d),
            "b_dec": rng.normal(scale=0.1, size=d).astype(np.float32),
            "threshold": rng.uniform(0.05, 0.3, size=width).astype(np.float32)}


def _write_saelens(folder, arrays, architecture, hook, **config):
    folder.mkdir(parents=True)
    names = ["W_enc", "b_enc", "W_dec", "b_dec"] + (["threshold"] if architecture == "jumprelu" else [])
    save_file({name: arrays[name] for name in names}, str(folder / "sae_weights.safetensors"))
    d, width = arrays["W_enc"].shape
    (folder / "cfg.json").write_text(json.dumps({"architecture": architecture, "d_in": d, "d_sae": width,
                                                 "meta": {"hook_name": hook}, **config}))
    return folder


def _write_sparsify(folder, arrays, k):
    folder.mkdir(parents=True)
    save_file({"encoder.weight": np.ascontiguousarray(arrays["W_enc"].T), "encoder.bias": arrays["b_enc"],
               "W_dec": arrays["W_dec"], "b_dec": arrays["b_dec"]}, str(folder / "sae.safetensors"))
    d, width = arrays["W_enc"].shape
    (folder / "cfg.json").write_text(json.dumps({"activation": "topk", "k": k, "num_latents": width, "d_in": d,
                                                 "expansion_factor": width // d, "normalize_decoder": True}))
    return folder


@pytest.mark.parametrize("architecture, activation, center, hook, site, block", [
    ("standard", "relu", True, "blocks.2.hook_resid_post", "resid_post", 2),
    ("jumprelu", "jumprelu", False, "blocks.1.hook_mlp_out", "mlp_out", 1),
    ("topk", "topk", True, "blocks.0.hook_resid_pre", "resid_pre", 0),
])
def test_saelens_folder_encodes_like_numpy_from_its_raw_arrays(llama, tmp_path, architecture, activation, center,
                                                              hook, site, block):
    """Oracle: the SAELens file's own arrays, encoded and decoded here in numpy (float64):
    ReLU / JumpReLU (``relu(pre) [pre > threshold]``) / TopK of ``(x - b_dec) W_enc + b_enc``
    (``x`` itself when ``apply_b_dec_to_input`` is false), decoded ``f W_dec + b_dec``
    (fails with W_enc read transposed, b_dec not subtracted, or the threshold ignored)."""
    arrays = _random_arrays(llama.d_model, 3 * llama.d_model)
    folder = _write_saelens(tmp_path / "sae", arrays, architecture, hook, apply_b_dec_to_input=center,
                            **({"k": 5} if architecture == "topk" else {}))
    sae = nm.load_sae(llama, folder, texts=TEXTS, progress=False)
    assert (sae.site, sae.step, sae.block, sae.activation) == (site, block, block, activation)
    x = np.random.default_rng(1).normal(size=(6, llama.d_model)).astype(np.float32)
    expected = hand_encode(arrays, x.astype(np.float64), activation, k=5, center=center)
    np.testing.assert_allclose(sae.encode(x), expected, atol=1e-5)
    np.testing.assert_allclose(sae.decode(expected.astype(np.float32)),
                               expected @ arrays["W_dec"].astype(np.float64) + arrays["b_dec"], atol=1e-5)
    assert np.isfinite(sae.fvu) and sae.l0 > 0 and sae.source == str(folder)
    counts = (expected > 0).sum(-1)
    assert counts.min() > 0 and (activation != "topk" or counts.max() <= 5)


def test_sparsify_folder_encodes_like_numpy_and_hub_names_download(llama, tmp_path, monkeypatch):
    """Oracle: sparsify's ``encoder.weight [w, d]`` read here, TopK of ReLU written in numpy;
    the folder name is the hookpoint (``layers.1`` = block 1's output). A hub name goes
    through ``huggingface_hub.snapshot_download`` (replaced here by the local copy)."""
    arrays = _random_arrays(llama.d_model, 2 * llama.d_model, seed=3)
    repo = tmp_path / "repo"
    _write_sparsify(repo / "layers.1", arrays, k=4)
    _write_sparsify(repo / "layers.2.mlp", arrays, k=4)
    sae = nm.load_sae(llama, repo, sae_id="layers.1", texts=TEXTS, progress=False)
    assert (sae.site, sae.step, sae.k) == ("resid_post", 1, 4)
    x = np.random.default_rng(2).normal(size=(5, llama.d_model)).astype(np.float32)
    np.testing.assert_allclose(sae.encode(x), hand_encode(arrays, x.astype(np.float64), "topk", k=4), atol=1e-5)
    asked = {}

    def snapshot_download(name, allow_patterns=None):
        asked.update(name=name, allow_patterns=allow_patterns)
        return str(repo)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    hub = nm.load_sae(llama, "EleutherAI/sae-tiny", sae_id="layers.2.mlp", texts=TEXTS, progress=False)
    assert asked == {"name": "EleutherAI/sae-tiny", "allow_patterns": "layers.2.mlp/*"}
    assert (hub.site, hub.step) == ("mlp_out", 2)


def test_our_sae_exported_to_saelens_loads_back_with_identical_features(llama, tmp_path):
    """Oracle: the trained SAE itself. Written as a SAELens folder (scale folded into the
    weights) and loaded back, it encodes the same activations to the same features and reads
    the held-out texts to the same codes and the same spliced-in loss."""
    sae = nm.train_sae(llama, step=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    loaded = nm.load_sae(llama, sae.save_saelens(tmp_path / "exported"), texts=TEXTS, progress=False)
    assert (loaded.site, loaded.step, loaded.k, loaded.scale) == (sae.site, sae.step, sae.k, 1.0)
    x = torch.randn(9, llama.d_model) * 2
    np.testing.assert_allclose(loaded.encode(x.numpy()), sae.encode(x.numpy()), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loaded.decode(sae.encode(x.numpy())), sae.decode(sae.encode(x.numpy())), atol=1e-4)
    np.testing.assert_array_equal(np.sort(loaded.code_indices, 1), np.sort(sae.code_indices, 1))
    assert loaded.ce_spliced == pytest.approx(sae.ce_spliced, abs=1e-5) and loaded.l0 == pytest.approx(sae.l0)
    again = nm.load_result(loaded.save(tmp_path / "loaded"))
    assert again.source == loaded.source and again.activation == "topk"
    np.testing.assert_array_equal(again.encode(x.numpy()), loaded.encode(x.numpy()))


def test_interval_samples_lie_in_their_band_and_top_contexts_carry_token_activations(llama):
    """Oracle: the feature's held-out activations (``activations_of``): every sampled context's
    activation lies in its band ``(low, high]``, bands tile ``(0, max]`` highest first with shares
    summing to 1, and each context's per-token values are the feature's activations on its own
    text's tokens at those positions."""
    sae = nm.train_sae(llama, step=2, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    feature = int(np.argmax(sae.frequencies))
    values = sae.activations_of(feature)
    bands = sae.quantile_samples(feature, bands=5, per_band=3)
    assert len(bands) == 5 and bands[0]["high"] == pytest.approx(values.max()) and bands[-1]["low"] == 0
    assert sum(band["share"] for band in bands) == pytest.approx(1)
    for band in bands:
        assert len(band["contexts"]) == min(3, round(band["share"] * np.count_nonzero(values)))
        for context in band["contexts"]:
            assert band["low"] < context["activation"] <= band["high"] + 1e-6
    for context in sae.top_contexts(feature, 3):
        rows = np.flatnonzero(sae.text_index == context["text"])
        at = int(np.flatnonzero(values[rows] == context["activation"])[0])
        lo = at - context["center"]
        assert context["tokens"] == sae.tokens[context["text"]][lo:lo + len(context["tokens"])]
        np.testing.assert_array_equal(context["activations"], values[rows][lo:lo + len(context["tokens"])])


def test_search_by_text_equals_encoding_hand_captured_activations(llama):
    """Oracle: block 2's output captured by a forward hook written here on HF's own module
    (text read after the prefix), encoded with ``sae.encode`` and averaged over the text's own
    tokens; the order and values must match (fails with the prefix token averaged in or the
    site one block off)."""
    sae = nm.train_sae(llama, step=2, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    text = "the dogs ran home while the cat sat"
    captured = {}
    handle = llama.blocks[2].register_forward_hook(
        lambda module, args, output: captured.update(x=(output[0] if isinstance(output, tuple) else output)))
    try:
        with torch.no_grad():
            llama.model(llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"])
    finally:
        handle.remove()
    prefix = len(llama.tokenizer(CONTRAST_PREFIX)["input_ids"])
    means = sae.encode(captured["x"][0, prefix:].numpy()).mean(0)
    found = sae.search_text(llama, text, n=5)
    expected = [int(f) for f in np.argsort(-means, kind="stable")[:5] if means[f] > 0]
    assert [f for f, _ in found] == expected
    np.testing.assert_allclose([v for _, v in found], means[expected], rtol=1e-5)


def test_bad_sources_are_one_line_and_leave_the_model_alone(llama, tmp_path):
    arrays = _random_arrays(llama.d_model, 2 * llama.d_model)
    ids = llama.tokenizer("the dog", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = llama.model(ids).logits
    wide = _random_arrays(llama.d_model + 8, 16)
    cases = [
        (_write_saelens(tmp_path / "a", arrays, "standard", "blocks.1.hook_resid_mid"), {}, "Unknown hook"),
        (_write_saelens(tmp_path / "b", wide, "standard", "blocks.1.hook_resid_post"), {}, "40-dim activations"),
        (_write_saelens(tmp_path / "c", arrays, "standard", "blocks.9.hook_resid_post"), {}, "block 9"),
        (_write_saelens(tmp_path / "d", arrays, "gated", "blocks.1.hook_resid_post"), {}, "not supported"),
        (_write_saelens(tmp_path / "e", arrays, "topk", "blocks.1.hook_resid_post"), {}, "gives no k"),
        (_write_saelens(tmp_path / "f", arrays, "standard", "blocks.1.hook_resid_post"), {"layer": 7}, "out of range"),
        (tmp_path / "nothing-here", {}, "No folder"),
        (tmp_path, {}, "pass one with --sae-id"),
    ]
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "cfg.json").write_text("{}")
    cases.append((tmp_path / "g", {}, "neither"))
    for source, kwargs, words in cases:
        with pytest.raises(NeuroMagicsError, match=words) as caught:
            nm.load_sae(llama, source, texts=TEXTS, progress=False, **kwargs)
        assert "\n" not in str(caught.value), str(caught.value)
    with torch.no_grad():
        assert torch.equal(llama.model(ids).logits, before)
    assert not llama.interventions


def test_sae_magic_loads_and_searches_by_text(shell, tiny_in_shell, tmp_path, capsys):
    """The magic is a thin shell: %sae load gives ``nm.load_sae``'s SAE, --text prints
    ``search_text``'s numbers."""
    from IPython.core.error import UsageError

    arrays = _random_arrays(tiny_in_shell.d_model, 2 * tiny_in_shell.d_model)
    folder = _write_saelens(tmp_path / "sae", arrays, "standard", "blocks.1.hook_resid_post")
    sae = shell.run_line_magic("sae", f"load {folder} -o s2")
    assert shell.user_ns["s2"] is sae and sae.step == 1 and sae.activation == "relu"
    shell.run_line_magic("sae", "show s2 --text 'the cat sat' --n 3")
    printed = capsys.readouterr().out
    feature, value = sae.search_text(tiny_in_shell, "the cat sat", 1)[0]
    assert f"{feature:>6}  {value:8.3f}" in printed
    with pytest.raises(UsageError, match="needs a source"):
        shell.run_line_magic("sae", "load")
    with pytest.raises(UsageError, match="Unknown hook"):
        shell.run_line_magic("sae", f"load {_write_saelens(tmp_path / 'x', arrays, 'standard', 'embed')}")
    assert not tiny_in_shell.interventions


def test_dashboard_swaps_cards_searches_and_acts_under_the_lock(llama, tmp_path, monkeypatch):
    """The dashboard's messages: select fills the card from the SAE's own reading; search
    lists ``sae.search`` (a held-out token) or ``search_text`` (any text); steer installs the
    same intervention as ``sae.steer``, and waits (saying "queued") while another thread holds
    the model's lock."""
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path))
    sae = nm.train_sae(llama, step=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    dashboard = sae.widget()
    order = np.argsort(-sae.frequencies, kind="stable")
    assert dashboard.card["feature"] == order[0]
    dashboard._message(dashboard, {"type": "select", "feature": int(order[1])}, [])
    card = dashboard.card
    assert card["feature"] == order[1] and card["contexts"] == sae.top_contexts(int(order[1]), 8, window=8)
    assert [tuple(t) for t in card["top_logits"]] == sae.logit_effects(llama, int(order[1]), 8)["top"]
    row = [c["feature"] for c in dashboard.cards].index(order[1])
    np.testing.assert_array_equal(dashboard.hist_counts[row], sae.histogram(int(order[1]))[0])
    assert [c["feature"] for c in dashboard.cards] == list(order[:8])  # the most frequent, computed up front
    dashboard._message(dashboard, {"type": "select", "feature": int(order[20])}, [])
    assert dashboard.card["feature"] == order[20] and len(dashboard.cards) == 9 and len(dashboard.hist_counts) == 9
    dashboard._message(dashboard, {"type": "select", "feature": int(order[1])}, [])
    token = sae.tokens[0][1].strip()
    dashboard._message(dashboard, {"type": "search", "query": token}, [])
    assert dashboard.matches == [f for f, _ in sae.search(token, 50)] and "held-out token" in dashboard.status
    dashboard._message(dashboard, {"type": "search", "query": "dogs ran home"}, [])
    assert dashboard.matches == [f for f, _ in sae.search_text(llama, "dogs ran home", 50)]
    dashboard._message(dashboard, {"type": "select", "feature": 10**6}, [])
    assert "out of range" in dashboard.status and dashboard.card["feature"] == order[1]
    statuses = []
    dashboard.observe(lambda change: statuses.append(change["new"]), "status")
    llama.lock.acquire()
    worker = threading.Thread(target=dashboard._message,
                              args=(dashboard, {"type": "steer", "feature": int(order[0]), "coef": 3.0}, []))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and not llama.interventions and "queued" in statuses[-1]
    llama.lock.release()
    worker.join()
    (intervention,) = llama.interventions
    assert intervention.spec == sae.steer(llama, int(order[0]), 3.0, install=False).spec
    dashboard._message(dashboard, {"type": "ablate", "feature": int(order[0])}, [])
    assert len(llama.interventions) == 2 and "Installed: ablate" in dashboard.status
