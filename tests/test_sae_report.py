"""Every number an SAE shows (its report, codes, feature reading, table and repr), against
independent computations: the held-out activations captured here by a forward hook on HF's own
block, one text at a time and unpadded, and encoded in float64 numpy from the SAE's raw arrays.

The cases are built to expose the usual slips: the model's residual stream carries a large
non-zero mean (an uncentred FVU normaliser is far off), the held-out texts have different
lengths and span three evaluation batches (an index relative to its batch, or a padded position,
is wrong), the loaded ReLU SAE has dead features and more than ``CODE_SLOTS`` active features per
token, and the JumpReLU thresholds differ per feature and are neither 0 nor 1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import neuro_magics as nm
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.analyses.sae import CODE_SLOTS, EVAL_BATCH, HOLDOUT, SparseAutoencoder, fit_topk
from sae_oracle import hand_encode
from tiny_models import tiny_model, tiny_tokenizer

WORDS = "the cat sat on a mat while seven dogs ran home and one bird sang quietly near the old mill".split()
#: 170 texts of 3 to 11 words: 17 held out, three evaluation batches of different lengths.
TEXTS = [" ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(3 + i % 9)) + f" {i}" for i in range(170)]
HELD_OUT = TEXTS[::HOLDOUT]
LAYER = 1
OFFSET = {3: 6.0, 11: -4.0, 20: 2.5}  # embedding dims shifted on every token: a large mean in the stream


def _subject() -> nm.Subject:
    model = tiny_model("llama")
    with torch.no_grad():
        for dim, shift in OFFSET.items():
            model.model.embed_tokens.weight[:, dim] += shift
    return nm.Subject(model, tiny_tokenizer(), name="tiny-llama")


def _captured(subject: nm.Subject, texts: list[str], layer: int = LAYER) -> list[np.ndarray]:
    """Block ``layer``'s output at each text's own tokens (after the one-token prefix), float64."""
    seen = []
    handle = subject.blocks[layer].register_forward_hook(
        lambda module, args, output: seen.append((output[0] if isinstance(output, tuple) else output)[0, 1:]))
    try:
        with torch.no_grad():
            for text in texts:
                subject.model(subject.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"])
    finally:
        handle.remove()
    return [x.double().numpy() for x in seen]


def _fvu(xs: np.ndarray, rebuilt: np.ndarray) -> float:
    return float(((xs - rebuilt) ** 2).sum() / ((xs - xs.mean(0)) ** 2).sum())


@pytest.fixture(scope="module")
def trained():
    """A TopK SAE trained on the offset model, the held-out captures, their hand codes."""
    subject = _subject()
    sae = nm.train_sae(subject, step=LAYER, texts=TEXTS, expansion=2, k=4, steps=40, batch_size=256, progress=False)
    x = _captured(subject, HELD_OUT)
    arrays = {name: getattr(sae, name).astype(np.float64) for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    dense = [hand_encode(arrays, xi, "topk", k=sae.k, scale=sae.scale) for xi in x]
    return subject, sae, x, dense


def test_the_held_out_set_spans_several_batches_of_different_lengths():
    """The premise of the tests below: a batch-relative index or a padded position is wrong here."""
    assert len(HELD_OUT) > 2 * EVAL_BATCH and len({len(t) for t in HELD_OUT[:EVAL_BATCH]}) > 3


def test_trained_report_fvu_l0_and_token_count_equal_a_hand_computation(trained):
    """Oracle: FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 and L0 = mean number of non-zero
    codes per token, over every held-out text's own tokens, from the hand captures and hand codes
    (fails with an uncentred normaliser, the mean over features or texts, or the prefix counted)."""
    subject, sae, x, dense = trained
    xs = np.concatenate(x) * sae.scale
    codes = np.concatenate(dense)
    rebuilt = codes @ sae.W_dec.astype(np.float64) + sae.b_dec
    fvu = _fvu(xs, rebuilt)
    assert float(((xs - rebuilt) ** 2).sum() / (xs ** 2).sum()) < 0.5 * fvu  # the mean matters here
    assert sae.fvu == pytest.approx(fvu, rel=1e-4)
    assert sae.l0 == pytest.approx(np.count_nonzero(codes, axis=1).mean(), rel=1e-9)
    assert sae.report["held_out_tokens"] == sum(len(t) for t in HELD_OUT) == len(xs)
    assert f"FVU {fvu:.3f}, L0 {sae.l0:.1f}" in repr(sae)


def test_loss_recovered_is_the_share_of_the_zero_ablation_gap():
    sae = object.__new__(SparseAutoencoder)
    sae.report = {"ce_original": 2.0, "ce_spliced": 2.5, "ce_zero": 6.0}
    assert sae.loss_recovered == pytest.approx((6.0 - 2.5) / (6.0 - 2.0))


def test_held_out_codes_tokens_and_positions_equal_hand_codes_of_each_text(trained):
    """Oracle: each held-out text's own characters (the tiny tokenizer's tokens) and its hand
    TopK codes in the SAE's scaled units, token by token, across the three evaluation batches
    (fails with a text index relative to its batch, positions counted from the padding, the
    codes divided by the scale, or values taken from other features)."""
    subject, sae, x, dense = trained
    assert len(sae.tokens) == len(HELD_OUT)
    for t, text in enumerate(HELD_OUT):
        assert "".join(sae.tokens[t]) == text and len(sae.tokens[t]) == len(text)
    np.testing.assert_array_equal(sae.text_index, np.repeat(np.arange(len(HELD_OUT)), [len(t) for t in HELD_OUT]))
    np.testing.assert_array_equal(sae.position, np.concatenate([np.arange(len(t)) for t in HELD_OUT]))
    codes = np.concatenate(dense)
    stored = np.zeros_like(codes)
    np.put_along_axis(stored, sae.code_indices.astype(np.int64), sae.code_values.astype(np.float64), 1)
    np.testing.assert_allclose(stored, codes, rtol=1e-4, atol=1e-4)
    for feature in range(sae.width):
        np.testing.assert_allclose(sae.activations_of(feature), codes[:, feature], rtol=1e-4, atol=1e-4)


def test_feature_table_frequencies_and_maxima_equal_hand_codes(trained):
    """Oracle: share of held-out tokens where the hand code is positive, its largest value."""
    subject, sae, x, dense = trained
    codes = np.concatenate(dense)
    table = sae.to_pandas()
    np.testing.assert_allclose(table["frequency"], (codes > 0).mean(0), atol=1e-12)
    np.testing.assert_allclose(table["max_activation"], codes.max(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(table["dead"], sae.since_fired > sae.report["dead_after"])


def test_top_contexts_histogram_and_token_search_equal_hand_readings(trained):
    """Oracle: the held-out texts themselves (the tiny tokenizer reads one character per token)
    and the hand codes: the strongest tokens with the characters around them, the histogram of
    the non-zero values, and the mean code over the tokens equal to a character."""
    subject, sae, x, dense = trained
    codes = np.concatenate(dense)
    text_of = np.repeat(np.arange(len(HELD_OUT)), [len(t) for t in HELD_OUT])
    position_of = np.concatenate([np.arange(len(t)) for t in HELD_OUT])
    feature = int(np.argsort(-(codes > 0).sum(0), kind="stable")[3])
    values = codes[:, feature]
    rows = np.argsort(-values, kind="stable")[:3]
    contexts = sae.top_contexts(feature, n=3, window=4)
    assert len(contexts) == 3
    def reading(row):
        text, at = HELD_OUT[text_of[row]], position_of[row]
        return text_of[row], text[max(0, at - 4):at], text[at], text[at + 1:at + 5]

    for context, row in zip(contexts, rows):
        assert context["activation"] == pytest.approx(values[row], rel=1e-4)
        # Tokens with the same activation (the same characters before them) may come in either
        # order, which the float rounding of a torch version decides: match among the tied rows.
        tied = {reading(r): r for r in np.flatnonzero(np.isclose(values, values[row], rtol=1e-5, atol=0))}
        shown = (context["text"], context["left"], context["token"], context["right"])
        assert shown in tied, (shown, list(tied))
        row = tied[shown]
        text, at = HELD_OUT[text_of[row]], position_of[row]
        lo = max(0, at - 4)
        np.testing.assert_allclose(context["activations"], codes[row - at + lo:row - at + min(len(text), at + 5),
                                                                 feature], rtol=1e-4, atol=1e-5)
    counts, edges = sae.histogram(feature, bins=7)
    hand_counts, hand_edges = np.histogram(values[values > 0], bins=7)
    np.testing.assert_array_equal(counts, hand_counts)
    np.testing.assert_allclose(edges, hand_edges, rtol=1e-4)
    letters = np.array([HELD_OUT[t][p] for t, p in zip(text_of, position_of)])
    means = codes[letters == "o"].mean(0)
    best = [int(f) for f in np.argsort(-means, kind="stable")[:5] if means[f] > 0]
    found = sae.search(" o ", n=5)
    assert [f for f, _ in found] == best
    np.testing.assert_allclose([v for _, v in found], means[best], rtol=1e-4)


def test_logit_effects_are_the_unembedding_of_the_decoder_row(trained):
    """Oracle: ``lm_head.weight @ (W_dec[f] / scale)`` (no final norm, as sae_vis), its largest
    and smallest entries named by the tokenizer (fails with the row unscaled, the order of the
    bottom list reversed, or the values' sign flipped)."""
    subject, sae, x, dense = trained
    feature = 5
    effects = subject.model.lm_head.weight.detach().double().numpy() @ (sae.W_dec[feature].astype(np.float64) / sae.scale)
    order = np.argsort(-effects, kind="stable")
    found = sae.logit_effects(subject, feature, n=4)
    tokenizer = subject.tokenizer
    assert [p for p, _ in found["top"]] == [tokenizer.decode([int(i)]) for i in order[:4]]
    assert [p for p, _ in found["bottom"]] == [tokenizer.decode([int(i)]) for i in order[::-1][:4]]
    np.testing.assert_allclose([v for _, v in found["top"]], effects[order[:4]], rtol=1e-4)
    np.testing.assert_allclose([v for _, v in found["bottom"]], effects[order[::-1][:4]], rtol=1e-4)


def test_dead_features_of_a_trained_sae_count_from_the_training_tokens(trained):
    """Oracle: the number of training tokens counted here (every text not held out, its own
    characters); a feature is dead when it has not fired for that many tokens."""
    subject, sae, x, dense = trained
    n_train = sum(len(t) for i, t in enumerate(TEXTS) if i % HOLDOUT)
    assert sae.report["dead_after"] == n_train == sae.metadata["n_train_tokens"]
    assert sae.dead_fraction == pytest.approx(float((sae.since_fired > n_train).mean()))
    assert sae.report["tokens_seen"] == 40 * 256 and len(sae.fvu_curve) == 40


@pytest.mark.parametrize("with_dead", [False, True])
def test_one_training_step_equals_a_hand_written_step(with_dead):
    """Oracle: one full-batch step written out here from the initial weights (``steps=0``): the
    TopK forward, the FVU loss with the centred variance (data with a large mean), its gradient
    by autograd, the decoder gradient's component along each (unit) row removed, Adam's first
    step ``lr g / (|g| + eps)``, rows renormalised. The recorded FVU and the tokens since each
    feature fired must match too (fails with the parallel component's sign flipped, the
    normaliser uncentred, or ``since_fired`` counted in steps). With ``dead_after = n - 1`` every
    feature silent on the batch is dead after it, and the step adds AuxK written out here: the
    d // 2 = 3 largest ReLU'd dead pre-activations rebuild the detached residual, over the same
    variance, times 1/32 (fails with AuxK left out of the step or its residual not detached)."""
    generator = torch.Generator().manual_seed(3)
    n, d, width, k, lr = 32, 6, 48, 2, 1e-2
    data = torch.randn(n, d, generator=generator) * torch.tensor([1.0, 2.0, 0.5, 1.5, 0.7, 1.2]) \
        + torch.tensor([10.0, -5.0, 3.0, 0.0, 8.0, -2.0])
    dead_after = n - 1 if with_dead else None
    start, _ = fit_topk(data, width, k, steps=0, batch_size=n, lr=lr, seed=0)
    model, report = fit_topk(data, width, k, steps=1, batch_size=n, lr=lr, seed=0, dead_after=dead_after)
    x = data.double()
    params = {name: getattr(start, name).detach().double().clone().requires_grad_(True)
              for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    values, indices = torch.relu(pre).topk(k, dim=-1)
    rebuilt = torch.zeros_like(pre).scatter(-1, indices, values) @ params["W_dec"] + params["b_dec"]
    variance = (x - x.mean(0)).pow(2).sum(1).mean()
    assert x.pow(2).sum(1).mean() > 5 * variance
    loss = (x - rebuilt).pow(2).sum(1).mean() / variance
    fvu = loss.item()
    fired = np.zeros(width, bool)
    fired[indices[values > 0].numpy()] = True
    if with_dead:
        dead = torch.from_numpy(~fired)
        aux_values, aux_indices = torch.relu(torch.where(dead, pre, -torch.inf)).topk(d // 2, dim=-1)
        aux_rebuilt = torch.zeros_like(pre).scatter(-1, aux_indices, aux_values) @ params["W_dec"]
        residual = (x - rebuilt).detach()
        loss = loss + (residual - aux_rebuilt).pow(2).sum(1).mean() / variance / 32
    loss.backward()
    rows = params["W_dec"].detach()
    gradient = params["W_dec"].grad
    tangent = gradient - (gradient * rows).sum(1, keepdim=True) * rows
    stepped = rows - lr * tangent / (tangent.abs() + 1e-8)
    expected = stepped / stepped.norm(dim=1, keepdim=True)
    assert not torch.allclose(tangent, gradient, atol=1e-3)  # the parallel part is not negligible here
    np.testing.assert_allclose(model.W_dec.detach().double().numpy(), expected.numpy(), atol=2e-4)
    np.testing.assert_allclose(model.W_dec.detach().norm(dim=1).numpy(), 1.0, atol=1e-6)
    assert report.fvu_curve[0] == pytest.approx(fvu, rel=1e-4)
    np.testing.assert_array_equal(report.since_fired, np.where(fired, 0, n))
    assert 0 < fired.sum() < width


# -- loaded SAEs -------------------------------------------------------------------------------------


def _write_saelens(folder, tensors: dict, architecture: str, hook: str) -> None:
    folder.mkdir(parents=True)
    save_file({name: np.ascontiguousarray(v, dtype=np.float32) for name, v in tensors.items()},
              str(folder / "sae_weights.safetensors"))
    d, width = tensors["W_enc"].shape
    (folder / "cfg.json").write_text(json.dumps({"architecture": architecture, "d_in": d, "d_sae": width,
                                                 "hook_name": hook}))


def _loaded_arrays(x: np.ndarray, width: int, seed: int) -> dict[str, np.ndarray]:
    """An SAE matched to the activations ``x``: centred on their mean, pre-activations of order 1."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    spread = x.std(0)
    return {"W_enc": (rng.normal(size=(d, width)) / (spread[:, None] * np.sqrt(d))).astype(np.float32),
            "b_enc": rng.normal(scale=0.3, size=width).astype(np.float32),
            "W_dec": (rng.normal(size=(width, d)) * spread / np.sqrt(width)).astype(np.float32),
            "b_dec": x.mean(0).astype(np.float32)}


def test_loaded_relu_sae_report_and_reading_equal_a_hand_computation(tmp_path):
    """Oracle: a ReLU (SAELens "standard") SAE written here, encoded in numpy on the hand captures:
    FVU (centred), L0, dead fraction (features never positive on a held-out token), frequencies
    and maxima. Eight features are planted dead (b_enc -1e3), and more than ``CODE_SLOTS``
    features fire on each token, so a reading from truncated codes is wrong."""
    subject = _subject()
    x = _captured(subject, HELD_OUT)
    width = 3 * CODE_SLOTS
    arrays = _loaded_arrays(np.concatenate(x), width, seed=4)
    arrays["b_enc"] += 1.0  # most features on: L0 above CODE_SLOTS
    arrays["b_enc"][[2, 9, 30, 31, 77, 100, 150, 191]] = -1e3
    _write_saelens(tmp_path / "relu", arrays, "standard", f"blocks.{LAYER}.hook_resid_post")
    sae = nm.load_sae(subject, tmp_path / "relu", texts=TEXTS, progress=False)
    codes = np.concatenate([hand_encode(arrays, xi, "relu") for xi in x])
    xs = np.concatenate(x)
    active = np.count_nonzero(codes, axis=1)
    assert active.min() > CODE_SLOTS
    assert sae.fvu == pytest.approx(_fvu(xs, codes @ arrays["W_dec"].astype(np.float64) + arrays["b_dec"]), rel=1e-4)
    assert sae.l0 == pytest.approx(active.mean(), rel=1e-9)
    fired = (codes > 0).any(0)
    assert fired.sum() == width - 8
    assert sae.dead_fraction == pytest.approx(1 - fired.mean())
    np.testing.assert_array_equal(sae.dead, ~fired)
    np.testing.assert_allclose(sae.frequencies, (codes > 0).mean(0), atol=1e-12)
    np.testing.assert_allclose(sae.max_activations, codes.max(0), rtol=1e-4, atol=1e-5)


def test_loaded_jumprelu_with_log_threshold_uses_its_exponential(tmp_path):
    """Oracle: JumpReLU written in numpy with ``threshold = exp(log_threshold)`` (SAELens files
    may store only the log), thresholds different per feature in (0.2, 1.6); encoding random
    activations and the held-out L0 must match (fails with the log used as the threshold)."""
    subject = _subject()
    x = _captured(subject, HELD_OUT)
    arrays = _loaded_arrays(np.concatenate(x), 2 * subject.d_model, seed=5)
    threshold = np.random.default_rng(6).uniform(0.2, 1.6, size=2 * subject.d_model).astype(np.float32)
    _write_saelens(tmp_path / "jump", {**arrays, "log_threshold": np.log(threshold)}, "jumprelu",
                   f"blocks.{LAYER}.hook_resid_post")
    sae = nm.load_sae(subject, tmp_path / "jump", texts=TEXTS, progress=False)
    assert sae.activation == "jumprelu"
    np.testing.assert_allclose(sae.threshold, threshold, rtol=1e-6)
    expected_arrays = {**arrays, "threshold": threshold.astype(np.float64)}
    probe = np.concatenate(x)[::5] + np.random.default_rng(7).normal(size=(1, subject.d_model)) * np.concatenate(x).std(0)
    expected = hand_encode(expected_arrays, probe, "jumprelu")
    wrong = hand_encode({**arrays, "threshold": np.log(threshold)}, probe, "jumprelu")
    assert np.count_nonzero(expected) < np.count_nonzero(wrong)  # the case tells exp from log apart
    np.testing.assert_allclose(sae.encode(probe.astype(np.float32)), expected, rtol=1e-4, atol=1e-4)
    codes = np.concatenate([hand_encode(expected_arrays, xi, "jumprelu") for xi in x])
    assert sae.l0 == pytest.approx(np.count_nonzero(codes, axis=1).mean(), rel=1e-9)
