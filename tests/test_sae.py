"""Sparse autoencoders (issue 16), against independent computations: a planted dictionary,
the spliced-in loss recomputed with the test's own hooks on the unmodified HF modules one
text at a time, and steering recomputed with a hand-written hook."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import neuro_magics as nm
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.analyses.sae import EVAL_BATCH, HOLDOUT, SparseAutoencoder, fit_topk
from neuro_magics.core.errors import NeuroMagicsError
from sae_oracle import hand_topk_codes, hand_topk_rebuilt
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [f"the cat {i} sat on the mat while {i * 7} dogs ran home" for i in range(30)]
WORDS = "the cat sat on a mat while seven dogs ran home and one bird sang quietly near the old mill".split()
#: 170 texts of 3 to 11 words: 17 held out, over three evaluation batches of different lengths.
MANY_TEXTS = [" ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(3 + i % 9)) + f" {i}" for i in range(170)]


@pytest.fixture
def llama():
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def test_topk_sae_recovers_a_planted_dictionary():
    """Oracle: a planted dictionary. 20,000 points, each a sum of 3 of 48 random unit atoms
    (positive magnitudes, 24 dims); an SAE twice as wide must give every planted atom a learned
    decoder row at cosine > 0.9 under the best one-to-one matching (fails with the decoder left
    unnormalized or the smallest k kept instead of the largest)."""
    generator = torch.Generator().manual_seed(1)
    atoms, d, n, active = 48, 24, 20_000, 3
    dictionary = torch.randn(atoms, d, generator=generator)
    dictionary /= dictionary.norm(dim=1, keepdim=True)
    support = torch.rand(n, atoms, generator=generator).argsort(1)[:, :active]
    codes = torch.zeros(n, atoms).scatter(1, support, 1 + torch.rand(n, active, generator=generator))
    data = codes @ dictionary
    model, report = fit_topk(data, 2 * atoms, active, steps=1000, batch_size=512, lr=3e-3, seed=0)
    cosines = (dictionary @ model.W_dec.detach().T).numpy()
    rows, cols = linear_sum_assignment(-cosines)
    matched = cosines[rows, cols]
    assert matched.min() > 0.9, np.sort(matched)[:5]
    assert report.fvu_curve[-1] < 0.1
    assert torch.allclose(model.W_dec.norm(dim=1), torch.ones(2 * atoms), atol=1e-5)


@pytest.mark.parametrize("site", ["resid_post", "mlp_out"])
def test_spliced_loss_equals_a_hand_computation(llama, site):
    """Oracle: each held-out text alone through HF's own forward, with a forward hook written
    here on the block (resid_post) or its MLP (mlp_out) replacing the output at the text's own
    tokens by the hand-written TopK reconstruction (or zero), and the mean next-token
    cross-entropy from log_softmax over those tokens. The 17 held-out texts of different
    lengths fill three evaluation batches (fails with the splice one layer off, the scored
    positions shifted, the prefix token spliced, or a batch's sums dropped)."""
    sae = nm.train_sae(llama, step=1, site=site, texts=MANY_TEXTS, expansion=2, k=4, steps=30, batch_size=128,
                       progress=False)
    model, block = llama.model, llama.blocks[1]
    module = block if site == "resid_post" else block.mlp
    totals, count = {"original": 0.0, "spliced": 0.0, "zero": 0.0}, 0
    held_out = MANY_TEXTS[::HOLDOUT]
    assert len(held_out) > 2 * EVAL_BATCH
    for text in held_out:
        ids = llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
        own = slice(1, None)  # the tiny tokenizer reads the prefix as one token
        for name in totals:
            def replace(mod, args, output, name=name):
                tensor = (output[0] if isinstance(output, tuple) else output).clone()
                if name == "spliced":
                    tensor[0, own] = torch.from_numpy(hand_topk_rebuilt(sae, tensor[0, own].numpy())).to(tensor.dtype)
                elif name == "zero":
                    tensor[0, own] = 0
                return (tensor, *output[1:]) if isinstance(output, tuple) else tensor

            handle = module.register_forward_hook(replace)
            try:
                with torch.no_grad():
                    logits = model(ids).logits[0]
            finally:
                handle.remove()
            log_probs = torch.log_softmax(logits.double(), -1)
            targets = ids[0, 2:]
            totals[name] -= float(log_probs[1:-1].gather(1, targets[:, None]).sum())
        count += ids.shape[1] - 2
    for name, total in totals.items():
        assert getattr(sae, f"ce_{name}") == pytest.approx(total / count, rel=1e-5, abs=1e-5), name
    assert sae.ce_spliced != pytest.approx(sae.ce_zero)


def test_steering_by_a_feature_equals_adding_its_decoder_vector(llama):
    """Oracle: a forward hook written here adding ``coef x W_dec[f] / scale`` to block 1's
    output (the resid_post site); logits of HF's forward must match the installed feature
    steering (fails with the steering at block 1's input, or the unscaled decoder row)."""
    sae = nm.train_sae(llama, step=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    ids = llama.tokenizer("the dog sat", return_tensors="pt")["input_ids"]
    feature, coef = 5, 3.0
    shift = torch.tensor(sae.W_dec[feature]) / sae.scale * coef

    def add(module, args, output):
        tensor = output[0] if isinstance(output, tuple) else output
        return (tensor + shift, *output[1:]) if isinstance(output, tuple) else tensor + shift

    handle = llama.blocks[1].register_forward_hook(add)
    try:
        with torch.no_grad():
            expected = llama.model(ids).logits
    finally:
        handle.remove()
    intervention = sae.steer(llama, feature, coef)
    try:
        with torch.no_grad():
            steered = llama.model(ids).logits
    finally:
        llama.remove_intervention(intervention)
    assert torch.allclose(steered, expected, atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(llama.model(ids).logits, expected, atol=1e-3)


def test_encode_decode_save_load_and_reading(llama, tmp_path):
    """Oracle: the hand-written TopK encode/decode; the held-out codes equal the hand codes of
    the held-out texts' own tokens captured by a hook written here on block 2; the logit
    effects equal ``lm_head.weight @ (W_dec[f] / scale)``; a saved SAE loads back to the same
    numbers."""
    sae = nm.train_sae(llama, step=2, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    captured = []
    handle = llama.blocks[2].register_forward_hook(
        lambda module, args, output: captured.append((output[0] if isinstance(output, tuple) else output)[0, 1:]))
    try:
        with torch.no_grad():
            for text in TEXTS[::HOLDOUT]:
                llama.model(llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"])
    finally:
        handle.remove()
    stored = torch.zeros(len(sae.code_indices), sae.width, dtype=torch.float64).scatter(
        1, torch.from_numpy(sae.code_indices).long(), torch.from_numpy(sae.code_values).double())
    np.testing.assert_allclose(stored.numpy(), hand_topk_codes(sae, torch.cat(captured).numpy()), rtol=1e-4,
                               atol=1e-4)
    x = torch.randn(7, llama.d_model) * 3
    np.testing.assert_allclose(sae.encode(x).double().numpy(), hand_topk_codes(sae, x.numpy()), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sae.decode(sae.encode(x)).double().numpy(), hand_topk_rebuilt(sae, x.numpy()),
                               atol=1e-4)
    assert (np.count_nonzero(sae.encode(x.numpy()), axis=1) <= sae.k).all()
    loaded = nm.load_result(sae.save(tmp_path / "sae"))
    assert isinstance(loaded, SparseAutoencoder) and loaded.fvu == sae.fvu and loaded.site == "resid_post"
    np.testing.assert_array_equal(loaded.W_dec, sae.W_dec)
    feature = int(np.argmax(sae.frequencies))
    contexts = sae.top_contexts(feature, n=3)
    assert contexts and contexts[0]["activation"] == pytest.approx(sae.activations_of(feature).max())
    counts, _ = sae.histogram(feature)
    assert counts.sum() == np.count_nonzero(sae.activations_of(feature))
    assert sae.search(contexts[0]["token"])
    effects = sae.logit_effects(llama, feature, n=3)
    by_hand = llama.model.lm_head.weight.detach().double() @ (torch.tensor(sae.W_dec[feature]).double() / sae.scale)
    for listed, ids in ((effects["top"], by_hand.topk(3).indices), (effects["bottom"], (-by_hand).topk(3).indices)):
        assert [piece for piece, _ in listed] == llama.token_pieces(ids.tolist())
        np.testing.assert_allclose([value for _, value in listed], by_hand[ids].numpy(), rtol=1e-4)
    assert sae.widget().card["feature"] == int(np.argmax(sae.frequencies))
    figure = sae.figure()
    assert figure.data[0].x.size == np.count_nonzero(sae.frequencies)


def test_bad_input_is_one_line_and_changes_nothing(llama):
    ids = llama.tokenizer("the dog", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = llama.model(ids).logits
    for kwargs, words in [
        (dict(step=1, site="embeddings"), "Unknown site"),
        (dict(step=9), "out of range"),
        (dict(step=1, expansion=10**7), "GiB"),
        (dict(step=1, k=0), "--k"),
        (dict(step=1, texts=["one"]), "at least two"),
    ]:
        with pytest.raises(NeuroMagicsError, match=words) as caught:
            nm.train_sae(llama, texts=kwargs.pop("texts", TEXTS), progress=False, **kwargs)
        assert "\n" not in str(caught.value)
    sae = nm.train_sae(llama, step=3, texts=TEXTS, expansion=1, k=2, steps=2, batch_size=64, progress=False)
    with pytest.raises(NeuroMagicsError, match="last block"):
        sae.steer(llama, 0, 1.0)
    with pytest.raises(NeuroMagicsError, match="out of range"):
        sae.top_contexts(10**6)
    with torch.no_grad():
        assert torch.equal(llama.model(ids).logits, before)
    assert not llama.interventions


def test_sae_magic_trains_shows_and_steers(shell, tiny_in_shell, capsys, tmp_path, monkeypatch):
    """The magic is a thin shell: %%sae train stores the SAE, show reads the numbers of
    the result's own reading, steer installs the same intervention as ``sae.steer``."""
    from IPython.core.error import UsageError

    cell = "\n".join(TEXTS)
    sae = shell.run_cell_magic("sae", "train --step 1 --expansion 2 --k 4 --steps 10 --batch 64 -o s1", cell)
    assert shell.user_ns["s1"] is sae and sae.step == 1 and sae.width == 2 * tiny_in_shell.d_model
    feature = int(np.argmax(sae.frequencies))
    shell.run_line_magic("sae", f"show s1 --feature {feature} --n 2")
    shown = capsys.readouterr().out
    assert f"{sae.top_contexts(feature, 1)[0]['activation']:8.3f}" in shown
    shell.run_line_magic("sae", f"steer --feature {feature} --coef 2")
    (intervention,) = tiny_in_shell.interventions
    assert intervention.spec["arguments"]["layer"] == 2 and intervention.spec["arguments"]["coef"] == 2.0
    for line, words in [("steer --feature 1", "--coef"), ("show nothing --feature 1", "not an SAE"),
                        ("train", "--step N"), ("train --layer 1", "ambiguous"),
                        ("show --feature 999999", "out of range")]:
        with pytest.raises(UsageError, match=words):
            shell.run_line_magic("sae", line)
    assert len(tiny_in_shell.interventions) == 1
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path))
    shell.run_line_magic("sae", f"ablate s1 --feature {feature}")
    assert tiny_in_shell.interventions[-1].spec["arguments"]["sae"].startswith(str(tmp_path))


def test_ctrl_c_keeps_the_sae_trained_so_far(llama, monkeypatch):
    """A KeyboardInterrupt at the third training step stops training there: the SAE of
    those three steps is evaluated and returned, marked interrupted, the model unchanged."""
    from neuro_magics.analyses.sae import training

    class InterruptingBar(training.ProgressBar):
        def update(self, n: int = 1) -> None:
            super().update(n)
            if self.desc.startswith("SAE") and self.n == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(training, "ProgressBar", InterruptingBar)
    ids = llama.tokenizer("the dog", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = llama.model(ids).logits
    sae = nm.train_sae(llama, step=1, texts=TEXTS, expansion=1, k=2, steps=50, batch_size=64, progress=False)
    assert sae.report["interrupted"] and len(sae.fvu_curve) == 3 and sae.report["tokens_seen"] == 3 * 64
    assert np.isfinite(sae.fvu) and "interrupted" in repr(sae)
    with torch.no_grad():
        assert torch.equal(llama.model(ids).logits, before)


def test_ablating_a_feature_subtracts_its_contribution_and_replays(llama, tmp_path, monkeypatch):
    """Oracle: a forward hook written here on block 1 subtracting ``f(x) W_dec[f] / scale``,
    with ``f(x)`` the hand-written TopK code of the block's output; the installed ablation and
    its rebuild from the recorded spec give HF the same logits (fails with the feature's
    amount taken from another feature, or the direction unscaled)."""
    from neuro_magics.core.interventions import rebuild

    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path / "cache"))
    sae = nm.train_sae(llama, step=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    ids = llama.tokenizer("the dog sat on the mat", return_tensors="pt")["input_ids"]
    feature = int(np.argmax(sae.frequencies))

    def subtract(module, args, output):
        tensor = output[0] if isinstance(output, tuple) else output
        amount = hand_topk_codes(sae, tensor.numpy())[..., feature:feature + 1]
        new = tensor - torch.from_numpy(amount * sae.W_dec[feature].astype(np.float64) / sae.scale).to(tensor.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = llama.blocks[1].register_forward_hook(subtract)
    try:
        with torch.no_grad():
            expected = llama.model(ids).logits
    finally:
        handle.remove()
    with torch.no_grad():
        plain = llama.model(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-4)
    for intervention in (sae.ablate(llama, feature, install=False),
                         rebuild(llama, sae.ablate(llama, feature, install=False).spec)):
        with intervention.applied(llama), torch.no_grad():
            assert torch.allclose(llama.model(ids).logits, expected, atol=1e-5)
    assert not llama.interventions
    # never saved: the SAE went to the cache under its content's hash, and the spec pins that hash
    spec = sae.ablate(llama, feature, install=False).spec
    cached = Path(spec["arguments"]["sae"])
    assert cached.parent == tmp_path / "cache" / "sae" and hashlib.sha256(cached.read_bytes()).hexdigest() \
        == spec["arguments"]["sha256"] and cached.name == spec["arguments"]["sha256"][:16] + ".npz"
    cached.write_bytes(cached.read_bytes() + b"x")
    with pytest.raises(NeuroMagicsError, match="changed since") as caught:
        rebuild(llama, spec)
    cached.unlink()
    with pytest.raises(NeuroMagicsError, match="is gone"):
        rebuild(llama, spec)
    assert "\n" not in str(caught.value) and not llama.interventions


@pytest.mark.integration
def test_default_model_sae_splices_in_between_original_and_zero(default_subject):
    """On the real model a short SAE on one layer already sits between the original loss
    and zero ablation, and its features read real tokens."""
    sae = nm.train_sae(default_subject, step=6, texts="builtin:code", expansion=2, k=16, steps=40, batch_size=512,
                       progress=False)
    assert sae.ce_original < sae.ce_spliced < sae.ce_zero and 0 < sae.fvu < 1 and sae.l0 == pytest.approx(16, abs=0.5)
    feature = int(np.argmax(sae.frequencies))
    assert sae.top_contexts(feature, 3) and sae.logit_effects(default_subject, feature, 3)["top"]
