"""Every number %checkup shows (its arrays, each finding's title, value, layer and position),
against independent computations: each text run alone and unpadded through HF's own modules,
read by hooks written here (block inputs and outputs, the heads' input to ``o_proj``, the MLP
neurons' input to ``down_proj``), and reduced here in float64 numpy.

The texts have different lengths and span three batches (so left padding shifts positions and
the per-batch partials are merged); planted cases: two heads writing the same direction at
different norms, a massive activation at the same position of texts of different lengths, a
lens that agrees early, then disagrees, then settles.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_magics import Subject
from neuro_magics.analyses.checkup import (
    LENS_AGREEMENT, LENS_POSITIONS, MASSIVE_ABSOLUTE, MASSIVE_RATIO, checkup,
    power_law_alpha,
)
from neuro_magics.analyses.checkup.findings import info_findings, read_findings
from neuro_magics.core.adapters import linear_modules
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [
    "The cat sat on the mat and looked at the dog across the room.",
    "Cold rain.",
    "The numbers add up: two plus three is five, and five plus five is ten.",
    "Nobody on the platform seemed to mind much.",
    "The river runs north past the mill, then bends east toward the sea and the harbour.",
    "Tests fail.",
    "A sun rose over the hills while the town slept.",
    "Old books were read by the fire all winter long, one after another.",
    "Go.",
    "The code compiles, but the tests fail on the second run of the loop.",
]
BATCH = 4  # three batches: 4, 4 and 2 texts
REDUNDANT_LAYER, HEAD_A, HEAD_B, HEAD_B_SCALE = 2, 2, 3, 2.5


def _subject(model) -> Subject:
    return Subject(model, tiny_tokenizer(), name="tiny-llama")


def _hand_passes(model, texts: list[str], max_tokens: int = 48) -> list[dict[str, np.ndarray]]:
    """Per text, alone: block inputs [L, T, d] and outputs, each head's write into the stream
    [L, H, T, d], MLP neurons [L, T, N], the lens's top token of each block output [L, T] and
    the model's own top token [T]."""
    layers = model.model.layers
    per_text = []
    for text in texts:
        ids = tiny_tokenizer()(text, return_tensors="pt")["input_ids"][:, :max_tokens]
        seen: dict[str, list] = {"in": [], "out": [], "heads": [], "neurons": []}
        handles = []
        for layer in layers:
            handles.append(layer.register_forward_pre_hook(
                lambda m, args, kwargs: seen["in"].append((args[0] if args else kwargs["hidden_states"])[0]),
                with_kwargs=True))
            handles.append(layer.register_forward_hook(
                lambda m, args, output: seen["out"].append((output[0] if isinstance(output, tuple) else output)[0])))
            handles.append(layer.self_attn.o_proj.register_forward_pre_hook(
                lambda m, args: seen["heads"].append(args[0][0])))
            handles.append(layer.mlp.down_proj.register_forward_pre_hook(
                lambda m, args: seen["neurons"].append(args[0][0])))
        try:
            with torch.no_grad():
                logits = model(ids).logits[0]
                lens = torch.stack([model.lm_head(model.model.norm(h)) for h in seen["out"]]).argmax(-1)
        finally:
            for handle in handles:
                handle.remove()
        writes = []
        for layer, joined in zip(layers, seen["heads"]):
            weight = layer.self_attn.o_proj.weight.detach().double()  # [d, H * hd]
            n_heads = model.config.num_attention_heads
            hd = weight.shape[1] // n_heads
            writes.append(torch.stack([joined.double()[:, h * hd:(h + 1) * hd] @ weight[:, h * hd:(h + 1) * hd].T
                                       for h in range(n_heads)]))
        per_text.append({"in": torch.stack(seen["in"]).double().numpy(),
                         "out": torch.stack(seen["out"]).double().numpy(),
                         "writes": torch.stack(writes).numpy(),
                         "neurons": torch.stack(seen["neurons"]).double().numpy(),
                         "lens": lens.numpy(), "top": logits.argmax(-1).numpy()})
    return per_text


@pytest.fixture(scope="module")
def planted():
    """A tiny Llama whose layer-2 head 3 copies head 2's queries (the two share a KV head) and
    writes 2.5x its output: the same direction at another norm. Its checkup over three batches,
    and the hand passes."""
    model = tiny_model("llama")
    attention = model.model.layers[REDUNDANT_LAYER].self_attn
    hd = 8
    with torch.no_grad():
        attention.q_proj.weight[HEAD_B * hd:(HEAD_B + 1) * hd] = attention.q_proj.weight[HEAD_A * hd:(HEAD_A + 1) * hd]
        attention.o_proj.weight[:, HEAD_B * hd:(HEAD_B + 1) * hd] = \
            HEAD_B_SCALE * attention.o_proj.weight[:, HEAD_A * hd:(HEAD_A + 1) * hd]
    result = checkup(_subject(model), TEXTS, batch_size=BATCH)
    return model, result, _hand_passes(model, TEXTS)


def test_residual_norms_max_and_growth_finding_equal_hand_norms(planted):
    """Oracle: ||h|| of each block's output per token; the mean over every token but each
    text's first, the first token's mean, the max |h| per dim, and the growth finding's
    ratio (fails with the first token included in the mean, or the padded first position
    taken as a text's first token)."""
    model, result, hand = planted
    norms = [np.linalg.norm(t["out"], axis=-1) for t in hand]  # [L, T] each
    rest = np.concatenate([n[:, 1:] for n in norms], axis=1).mean(1)
    first = np.stack([n[:, 0] for n in norms], axis=1).mean(1)
    assert not np.allclose(rest, np.concatenate(norms, axis=1).mean(1), rtol=1e-3)  # the first token matters
    np.testing.assert_allclose(result.resid_norm, rest, rtol=1e-5)
    np.testing.assert_allclose(result.first_norm, first, rtol=1e-5)
    np.testing.assert_allclose(result.resid_max, np.max([np.abs(t["out"]).max(1) for t in hand], axis=0), rtol=1e-5)
    (growth,) = [f for f in result.findings if f.kind == "residual_growth"]
    assert growth.value == pytest.approx(rest[-1] / rest[0], rel=1e-5)
    assert f"grows {rest[-1] / rest[0]:.1f}x" in growth.title and f"peaks at {first.max():.3g}" in growth.explanation


def test_residual_median_is_the_token_weighted_mean_of_batch_medians(planted):
    """Oracle: per batch of ``BATCH`` texts, the (lower, as torch's) median of |h| over its real
    tokens' cells, averaged with the batch's cell counts as weights; one batch: the median."""
    model, result, hand = planted

    def lower_median(cells: np.ndarray) -> np.ndarray:  # [L, M] -> [L]
        return np.sort(cells, axis=1)[:, (cells.shape[1] - 1) // 2]

    medians, weights = [], []
    for start in range(0, len(hand), BATCH):
        cells = np.concatenate([np.abs(t["out"]).reshape(t["out"].shape[0], -1) for t in hand[start:start + BATCH]], 1)
        medians.append(lower_median(cells))
        weights.append(cells.shape[1] / hand[0]["out"].shape[-1])  # tokens
    np.testing.assert_allclose(result.resid_median, np.average(medians, axis=0, weights=weights), rtol=1e-5)
    single = checkup(_subject(model), TEXTS[:4], batch_size=4, spectra=False)
    cells = np.concatenate([np.abs(t["out"]).reshape(t["out"].shape[0], -1) for t in hand[:4]], 1)
    np.testing.assert_allclose(single.resid_median, lower_median(cells), rtol=1e-5)


def test_head_cosine_and_redundant_head_finding_equal_hand_cosines(planted):
    """Oracle: each head's write into the stream (its slice of ``o_proj`` input times its
    columns), flattened over every token of every text; cosine = <a, b> / (|a| |b|). The
    planted pair is found at its layer with the later head, value 1 (fails with the squared
    norms as the normaliser, or another head's norm)."""
    model, result, hand = planted
    writes = np.concatenate([t["writes"] for t in hand], axis=2)  # [L, H, M, d]
    flat = writes.reshape(*writes.shape[:2], -1)
    gram = np.einsum("lhx,lgx->lhg", flat, flat)
    norm = np.sqrt(np.einsum("lhh->lh", gram))
    cosine = gram / (norm[:, :, None] * norm[:, None, :])
    np.testing.assert_allclose(result.head_cosine, cosine, atol=2e-5)
    assert cosine[REDUNDANT_LAYER, HEAD_A, HEAD_B] == pytest.approx(1.0, abs=1e-9)
    redundant = [f for f in result.findings if f.kind == "redundant_heads"]
    assert [(f.step, f.head) for f in redundant] == [(REDUNDANT_LAYER, HEAD_B)], result
    assert redundant[0].value == pytest.approx(1.0, abs=1e-5)
    assert redundant[0].action == {"kind": "ablate_heads", "heads": [[REDUNDANT_LAYER, HEAD_B]]}
    assert (np.triu(cosine, 1) > 0.95).sum() == 1  # the planted pair is the only one


def test_block_influence_and_its_finding_equal_hand_cosines(planted):
    """Oracle: 1 - cos(block input, block output) per token, averaged over every real token;
    the finding names the least influential layer (fails with the most influential)."""
    model, result, hand = planted
    inputs = np.concatenate([t["in"] for t in hand], axis=1)
    outputs = np.concatenate([t["out"] for t in hand], axis=1)
    cos = (inputs * outputs).sum(-1) / (np.linalg.norm(inputs, axis=-1) * np.linalg.norm(outputs, axis=-1))
    influence = 1 - cos.mean(1)
    np.testing.assert_allclose(result.block_influence, influence, rtol=1e-4, atol=1e-6)
    assert int(np.argmin(influence)) != int(np.argmax(influence))
    (finding,) = [f for f in result.findings if f.kind == "block_influence"]
    assert finding.step == int(np.argmin(influence)) and finding.value == pytest.approx(influence.min(), rel=1e-4)


def _settled(agreement: np.ndarray) -> int:
    """The first layer from which on the lens agrees at least LENS_AGREEMENT of the time, to the end."""
    for k in range(len(agreement)):
        if all(a >= LENS_AGREEMENT for a in agreement[k:]):
            return k
    return len(agreement) - 1


def test_lens_agreement_and_settling_layer_equal_the_hand_lens(planted):
    """Oracle: final norm + lm_head on each block's output, top-1 against the model's own over
    the last ``LENS_POSITIONS`` tokens of each text (all of a shorter one) (fails with the
    positions shifted by one, or the padded positions counted)."""
    model, result, hand = planted
    hits = np.concatenate([(t["lens"] == t["top"])[:, -LENS_POSITIONS:] for t in hand], axis=1)
    np.testing.assert_allclose(result.lens_agreement, hits.mean(1), rtol=1e-6)
    assert hits[-1].all()
    (finding,) = [f for f in result.findings if f.kind == "logit_lens"]
    assert finding.step == _settled(hits.mean(1)) and finding.value == pytest.approx(hits.mean(1)[finding.step])


def test_neuron_max_and_the_severity_counts_equal_hand_values(planted):
    """Oracle: max |a| of the neurons (``down_proj``'s input) over every token; the counts per
    severity and the table are the findings'."""
    model, result, hand = planted
    np.testing.assert_allclose(result.neuron_max, np.max([np.abs(t["neurons"]).max(1) for t in hand], axis=0),
                               rtol=1e-5)
    counts = result.counts()
    assert counts == {s: sum(f.severity == s for f in result.findings) for s in ("high", "medium", "info")}
    assert f"{counts['medium']} medium, {counts['info']} info" in repr(result)
    assert list(result.to_pandas()["kind"]) == [f.kind for f in result.findings]


def test_weight_spectra_alpha_is_the_fit_of_each_matrix_s_squared_singular_values(planted):
    """Oracle: numpy's singular values of each weight matrix, squared (the eigenvalues of
    W^T W), fitted with ``power_law_alpha`` (itself checked against a hand fit below); the
    spectrum findings list the matrices with alpha outside [2, 6] and their first layer."""
    model, result, hand = planted
    assert result.matrix_names == list(linear_modules(model.model.layers[0]))
    alpha = np.full(result.alpha.shape, np.nan)
    for b, layer in enumerate(model.model.layers):
        for m, (name, module) in enumerate(linear_modules(layer).items()):
            values = np.linalg.svd(module.weight.detach().double().numpy(), compute_uv=False) ** 2
            alpha[b, m] = power_law_alpha(values)[0]
    np.testing.assert_allclose(result.alpha, alpha, rtol=1e-4)
    outside = (alpha < 2) | (alpha > 6)
    spectra = [f for f in result.findings if f.kind == "weight_spectrum"]
    expected = [(name, int(np.nonzero(outside[:, m])[0][0])) for m, name in enumerate(result.matrix_names)
                if outside[:, m].any()]
    assert [(f.title.split(":")[0], f.block) for f in spectra] == expected and expected


def test_power_law_fit_and_ks_distance_equal_a_hand_fit():
    """Oracle: for each candidate xmin (leaving at least ``min_tail`` values), the MLE
    ``alpha = 1 + n / sum ln(x / xmin)`` and the KS distance between the fitted CDF
    ``1 - (x / xmin)^(1 - alpha)`` and the tail's empirical CDF ``i / n`` (powerlaw's and
    WeightWatcher's convention), written out in plain Python; the smallest distance wins
    (fails with the empirical CDF off by one, or the MLE's log ratios from the wrong end)."""
    values = [0.3, 0.5, 0.9, 1.0, 1.1, 1.4, 2.0, 2.2, 3.1, 4.8, 7.5, 13.0, 30.0, 95.0]
    best = None
    ordered = sorted(values)
    for i in range(len(ordered) - 5 + 1):
        tail = ordered[i:]
        xmin, n = tail[0], len(tail)
        total = sum(np.log(x / xmin) for x in tail)
        alpha = 1 + n / total
        distance = max(abs((1 - (x / xmin) ** (1 - alpha)) - j / n) for j, x in enumerate(tail))
        if best is None or distance < best[2]:
            best = (alpha, xmin, distance)
    np.random.default_rng(0).shuffle(values)
    fitted = power_law_alpha(np.array(values), min_tail=5)
    np.testing.assert_allclose(fitted, best, rtol=1e-12)


def test_info_findings_read_the_least_influential_step_and_where_the_lens_settles_for_good():
    """Planted arrays on a program running block 0 twice (steps 0 and 1): the lens agrees at
    step 0, not at 1, then from 2 on (it settles at step 2, block 1, not at 0); Block Influence
    lowest at step 1 (block 0), highest at 3; residual norm growth 12 / 3. Each names its step and block."""
    arrays = {"resid_norm": np.array([3.0, 5.0, 7.0, 12.0]), "first_norm": np.array([1.0, 40.0, 9.0, 2.0]),
              "block_influence": np.array([0.3, 0.05, 0.2, 0.6]), "lens_agreement": np.array([0.75, 0.25, 0.5, 1.0]),
              "alpha": np.zeros((0, 0))}
    steps = [0, 0, 1, 2]
    findings = {f.kind: f for f in info_findings(arrays, [], steps)}
    assert (findings["logit_lens"].step, findings["logit_lens"].block, findings["logit_lens"].value) == (2, 1, 0.5)
    assert "settles at step 2 (block 1) of 4 steps" in findings["logit_lens"].title
    assert (findings["block_influence"].step, findings["block_influence"].block) == (1, 0)
    assert findings["block_influence"].value == 0.05 and findings["block_influence"].title.startswith("Step 1 (block 0) ")
    assert findings["residual_growth"].value == pytest.approx(4.0) and "peaks at 40" in findings["residual_growth"].explanation
    arrays["lens_agreement"] = np.array([0.9, 0.8, 0.2, 0.1])  # never settles before the last step
    assert {f.kind: f for f in info_findings(arrays, [], steps)}["logit_lens"].step == 3


MASSIVE_TEXTS = [  # "Q" only at position 2; four short texts of one length and a long one, which pads them
    "A Quiet evening by the lake, with the boats drawn up on the stones.",
    "A Quest",
    "A Quilt",
    "A Quota",
    "A Quirk",
]
MASSIVE_DIM = 5


def test_massive_activation_position_and_values_count_from_each_text_s_first_token():
    """Ground truth: "Q" (always the third token) gets 400 in one embedding dim, which layer 2's
    MLP raises further; in a batch
    with texts of different lengths it sits at different padded positions. The finding must
    say position 2, token 'Q', the peak |h| and, per block, the corpus mean of the flagged cells
    and the threshold, from the hand passes (fails with the position counted from the padding)."""
    model = tiny_model("llama")
    q = tiny_tokenizer().convert_tokens_to_ids("Q")
    mlp = model.model.layers[2].mlp  # neuron 0 of layer 2 reads the massive dim and adds ~250 to it: the peak is later
    with torch.no_grad():
        model.model.embed_tokens.weight[q, MASSIVE_DIM] = 400.0
        for weight in (mlp.gate_proj.weight, mlp.up_proj.weight):
            weight[0] = 0.0
            weight[0, MASSIVE_DIM] = 2.0
        mlp.down_proj.weight[:, 0] = 0.0
        mlp.down_proj.weight[MASSIVE_DIM, 0] = 2.0
    result = checkup(_subject(model), MASSIVE_TEXTS, batch_size=8, spectra=False)
    hand = _hand_passes(model, MASSIVE_TEXTS)
    (finding,) = [f for f in result.findings if f.kind == "massive_activation"]
    assert (finding.dim, finding.token) == (MASSIVE_DIM, 2) and "'Q'" in finding.explanation
    at_q = np.stack([t["out"][:, 2, MASSIVE_DIM] for t in hand], axis=1)  # [L, texts]
    assert finding.value == pytest.approx(np.abs(at_q).max(), rel=1e-5)
    assert finding.step == int(np.argmax(np.abs(at_q).max(1))) >= 2
    cells = np.concatenate([np.abs(t["out"]).reshape(t["out"].shape[0], -1) for t in hand], 1)
    thresholds = np.maximum(MASSIVE_ABSOLUTE, MASSIVE_RATIO * np.sort(cells, 1)[:, (cells.shape[1] - 1) // 2])
    assert (np.abs(at_q) > thresholds[:, None]).all()
    blocks = finding.action["blocks"]
    assert [entry["block"] for entry in blocks] == list(range(len(hand[0]["out"])))
    np.testing.assert_allclose([entry["means"][0] for entry in blocks], at_q.mean(1), rtol=1e-5)
    np.testing.assert_allclose([entry["threshold"] for entry in blocks], thresholds, rtol=1e-5)


def test_findings_read_off_planted_arrays_name_blocks_severities_and_values():
    """Planted arrays on a two-step program running blocks 5 and 7: sinks ranked by mass, a
    dead head under 1e-3 x the median importance, one redundant pair, dead neurons at exactly
    10% of a layer (medium) and at 20% (high); actions name blocks, not steps."""
    eye = np.stack([np.eye(3)] * 2)
    eye[0, 0, 2] = eye[0, 2, 0] = 0.97
    arrays = {"sink_mass": np.array([[0.1, 0.7, 0.2], [0.9, 0.3, 0.55]]), "entropy": np.ones((2, 3)),
              "importance": np.array([[1.0, 2.0, 3.0], [5e-4, 4.0, 5.0]]), "head_cosine": eye,
              "neuron_max": np.array([[1.0] * 3 + [0.0] + [1.0] * 6, [1.0, 0.0, 1.0, 1.0, 0.0] + [1.0] * 5]),
              "neuron_mean": np.zeros((2, 10)), "neuron_std": np.ones((2, 10)),
              "resid_norm": np.array([1.0, 2.0]), "first_norm": np.array([1.0, 2.0]),
              "block_influence": np.array([0.2, 0.1]), "lens_agreement": np.array([0.2, 1.0]), "alpha": np.zeros((0, 0))}
    findings = read_findings(arrays, [], [5, 7], {})
    serious = [(f.severity, f.kind, f.step, f.block, f.head, f.dim) for f in findings if f.severity != "info"]
    assert serious == [("high", "dead_neurons", 1, 7, None, 1), ("medium", "attention_sink", 1, 7, 0, None),
                       ("medium", "dead_head", 1, 7, 0, None), ("medium", "redundant_heads", 0, 5, 2, None),
                       ("medium", "dead_neurons", 0, 5, None, 3)]
    assert [f.title for f in findings if f.severity != "info"][:3] == [
        "2 dead MLP neurons at step 1 (block 7): 1,4",
        "Attention sink: 3 of 6 heads put over 50% on the first token",
        "Dead head 0 at step 1 (block 7): the loss does not depend on it"]
    assert "head 0 at step 1 (block 7) 90%" in findings[1].explanation
    by_kind = {f.kind: f for f in findings}
    assert by_kind["attention_sink"].value == 0.9 and "3 of 6 heads" in by_kind["attention_sink"].title
    assert by_kind["attention_sink"].action == {"kind": "ablate_heads", "heads": [[7, 0]]}
    assert by_kind["dead_head"].value == 5e-4 and by_kind["dead_head"].action["heads"] == [[7, 0]]
    assert by_kind["redundant_heads"].value == 0.97 and by_kind["redundant_heads"].action["heads"] == [[5, 2]]
    assert findings[0].action == {"kind": "ablate_neurons", "neurons": [[7, 1], [7, 4]]} and "20.0%" in findings[0].explanation
