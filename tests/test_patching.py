"""Oracles 8 and 9 of TESTING.md (patching, attribution patching) on every tiny family and on
the default model, plus causal tracing, the result object and its widget."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.patching import (
    SITES,
    PatchResult,
    _Side,
    _attribution,
    _patched_logits,
    _record,
    answer_token_ids,
    metric_values,
)
from neuro_magics.analyses.tracing import TraceResult, trace

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from patch import naive_sweep  # noqa: E402

CLEAN, CORRUPT = "ab cdefgh", "ab cdXfgh"  # char tokenizer: one token per character
DIFFERING = 5
ANSWERS = ("e", "X")


def _hook_counts(model) -> list[int]:
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]


def _sides(subject, site, clean=CLEAN, corrupt=CORRUPT):
    ids = {name: subject.encode(text)["input_ids"] for name, text in (("clean", clean), ("corrupt", corrupt))}
    return _record(subject, ids["clean"], site), _record(subject, ids["corrupt"], site)


@torch.no_grad()
def _unpatched_logits(subject, base, step, rows, logits_at="last", site="resid_pre"):
    start = step + 1 if site == "resid_post" else step
    stream = "resid_post" if site == "resid_post" else "resid_pre"
    resid = base.states[stream][step].expand(rows, -1, -1).clone()
    out = nm.run(subject, base.inputs, start=start, resid=resid, logits_at=logits_at)
    return out.logits[:, -1] if logits_at == "last" else out.logits


# -- oracle 8 ---------------------------------------------------------------------------------


def test_the_only_differing_position_at_step_0_gives_1_denoising_and_0_noising(tiny):
    denoise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, progress=False)
    noise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, direction="noise", progress=False)
    assert denoise.effect.shape == (tiny.n_layers, len(CLEAN))
    # At step 0 the prompts differ only at one position: patching it patches the whole stream.
    assert denoise.effect[0, DIFFERING] == pytest.approx(1.0, abs=1e-4)
    assert noise.effect[0, DIFFERING] == pytest.approx(0.0, abs=1e-4)
    others = np.delete(np.arange(len(CLEAN)), DIFFERING)
    np.testing.assert_allclose(denoise.effect[0, others], 0.0, atol=1e-4)
    np.testing.assert_allclose(noise.effect[0, others], 1.0, atol=1e-4)


@torch.no_grad()
def test_patching_the_whole_stream_at_any_step_gives_1_and_in_reverse_0(tiny):
    answer_ids = answer_token_ids(tiny, ANSWERS)
    clean, corrupt = _sides(tiny, "resid_pre")
    m_clean = metric_values(clean.logits, answer_ids, "logit_diff").item()
    m_corrupt = metric_values(corrupt.logits, answer_ids, "logit_diff").item()
    for step in range(tiny.n_layers):
        into_corrupt = nm.run(tiny, corrupt.inputs, start=step, resid=clean.states["resid_pre"][step])
        into_clean = nm.run(tiny, clean.inputs, start=step, resid=corrupt.states["resid_pre"][step])
        for out, expected in ((into_corrupt, 1.0), (into_clean, 0.0)):
            m = metric_values(out.logits[:, -1], answer_ids, "logit_diff").item()
            assert (m - m_corrupt) / (m_clean - m_corrupt) == pytest.approx(expected, abs=1e-4)


def test_patching_the_last_block_output_at_the_last_position_gives_1(tiny):
    denoise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="resid_post", progress=False)
    noise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="resid_post", direction="noise", progress=False)
    assert denoise.effect[-1, -1] == pytest.approx(1.0, abs=1e-5)
    assert noise.effect[-1, -1] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("metric", ["logprob", "prob"])
@torch.no_grad()
def test_logprob_and_prob_metrics_equal_torch_softmax_of_the_hf_logits(tiny, metric):
    """Clean, corrupt and patched cells against torch.log_softmax / softmax of the full logits of
    an ordinary HF forward (a pre-hook on block l swaps the clean state in at position p)."""
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, metric=metric, progress=False)
    answer = answer_token_ids(tiny, ANSWERS)[0]
    normalise = torch.log_softmax if metric == "logprob" else torch.softmax
    clean_ids, corrupt_ids = tiny.encode(CLEAN)["input_ids"], tiny.encode(CORRUPT)["input_ids"]
    clean_out = tiny.model(clean_ids, output_hidden_states=True)

    def reference(logits):
        return normalise(logits[0, -1].double(), dim=-1)[answer].item()

    assert result.clean_metric == pytest.approx(reference(clean_out.logits), rel=1e-5, abs=1e-7)
    assert result.corrupt_metric == pytest.approx(reference(tiny.model(corrupt_ids).logits), rel=1e-5, abs=1e-7)
    for layer, position in [(0, DIFFERING), (1, DIFFERING + 1), (tiny.n_layers - 1, len(CLEAN) - 1)]:
        def swap(module, args, kwargs, layer=layer, position=position):
            hidden = (args[0] if args else kwargs["hidden_states"]).clone()
            hidden[:, position] = clean_out.hidden_states[layer][:, position]
            return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})

        handle = tiny.blocks[layer].register_forward_pre_hook(swap, with_kwargs=True)
        try:
            expected = reference(tiny.model(corrupt_ids).logits)
        finally:
            handle.remove()
        assert result.patched_metric[layer, position] == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("site", ["resid_pre", "resid_post", "attn_out", "mlp_out"])
def test_a_patch_at_p_leaves_earlier_positions_bit_identical(tiny, site):
    clean, corrupt = _sides(tiny, site)
    for step in (0, tiny.n_layers - 2):
        patched = _patched_logits(tiny, corrupt, clean, site, step, [DIFFERING], logits_at="all")
        untouched = _unpatched_logits(tiny, corrupt, step, 1, logits_at="all", site=site)
        assert torch.equal(patched[:, :DIFFERING], untouched[:, :DIFFERING])
        assert not torch.equal(patched[:, DIFFERING:], untouched[:, DIFFERING:])


@pytest.mark.parametrize("site", SITES)
def test_clean_into_clean_changes_nothing(tiny, site):
    clean, _ = _sides(tiny, site)
    n_cols = tiny.n_heads if site == "heads" else len(CLEAN)
    for step in range(tiny.n_layers):
        patched = _patched_logits(tiny, clean, clean, site, step, list(range(n_cols)))
        untouched = _unpatched_logits(tiny, clean, step, n_cols, site=site)
        if site.startswith("resid"):
            assert torch.equal(patched, untouched)
        else:  # the donor was computed in a batch of one, the patched run in a batch of n_cols
            torch.testing.assert_close(patched, untouched, rtol=0, atol=1e-6)
        torch.testing.assert_close(patched, clean.logits.expand_as(patched), rtol=0, atol=1e-5)


@pytest.mark.parametrize("site", SITES)
def test_batched_sweep_equals_serial_sweep(tiny, site):
    batched = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site=site, progress=False)
    serial = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site=site, batch_size=1, progress=False)
    np.testing.assert_allclose(batched.patched_metric, serial.patched_metric, atol=1e-5)


def test_resid_pre_sweep_equals_one_hooked_hf_forward_per_cell(tiny):
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, progress=False)
    np.testing.assert_allclose(result.effect, naive_sweep(tiny, CLEAN, CORRUPT, ANSWERS), atol=1e-4)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _causal_attention(q, k, v, scale):
    """softmax(q k^T * scale + causal mask) v per head: q, k, v are [heads, T, head_dim]."""
    scores = q @ k.transpose(-1, -2) * scale
    n = scores.shape[-1]
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v  # [heads, T, head_dim]


def _hand_llama(model, ids, swap=None):
    """A tiny Llama written out from its weights: rotary attention split into heads, the
    per-head outputs ``z [T, heads, head_dim]`` concatenated into o_proj. ``swap(layer, z)``
    may return a replacement z. Returns (last-position logits, every layer's z)."""
    config = model.config
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = config.hidden_size // n_heads

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + config.rms_norm_eps))

    x = model.model.embed_tokens.weight[ids[0]]
    n = x.shape[0]
    inverse = 1.0 / (config.rope_parameters["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.arange(n).float()[:, None] * inverse[None]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    zs = []
    for layer, block in enumerate(model.model.layers):
        attention = block.self_attn
        h = rms(x, block.input_layernorm.weight)
        q = (h @ attention.q_proj.weight.T).view(n, n_heads, head_dim).transpose(0, 1)
        k = (h @ attention.k_proj.weight.T).view(n, n_kv, head_dim).transpose(0, 1)
        v = (h @ attention.v_proj.weight.T).view(n, n_kv, head_dim).transpose(0, 1)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = k.repeat_interleave(n_heads // n_kv, 0), v.repeat_interleave(n_heads // n_kv, 0)
        z = _causal_attention(q, k, v, head_dim**-0.5).transpose(0, 1)  # [T, heads, head_dim]
        if swap is not None:
            z = swap(layer, z)
        zs.append(z)
        x = x + z.reshape(n, -1) @ attention.o_proj.weight.T
        h = rms(x, block.post_attention_layernorm.weight)
        mlp = block.mlp
        x = x + (torch.nn.functional.silu(h @ mlp.gate_proj.weight.T) * (h @ mlp.up_proj.weight.T)) @ mlp.down_proj.weight.T
    x = rms(x, model.model.norm.weight)
    return x[-1:] @ model.lm_head.weight.T, zs


def _hand_gpt2(model, ids, swap=None):
    """A tiny GPT-2 written out from its weights (Conv1D stores [in, out])."""
    config = model.config
    n_heads = config.n_head
    head_dim = config.n_embd // n_heads
    body = model.transformer

    def norm(x, ln):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], ln.weight, ln.bias, config.layer_norm_epsilon)

    n = ids.shape[1]
    x = body.wte.weight[ids[0]] + body.wpe.weight[:n]
    zs = []
    for layer, block in enumerate(body.h):
        attention = block.attn
        qkv = norm(x, block.ln_1) @ attention.c_attn.weight + attention.c_attn.bias
        q, k, v = (part.view(n, n_heads, head_dim).transpose(0, 1) for part in qkv.split(config.n_embd, -1))
        z = _causal_attention(q, k, v, head_dim**-0.5).transpose(0, 1)
        if swap is not None:
            z = swap(layer, z)
        zs.append(z)
        x = x + z.reshape(n, -1) @ attention.c_proj.weight + attention.c_proj.bias
        mlp = block.mlp
        hidden = torch.nn.functional.gelu(norm(x, block.ln_2) @ mlp.c_fc.weight + mlp.c_fc.bias, approximate="tanh")
        x = x + hidden @ mlp.c_proj.weight + mlp.c_proj.bias
    x = norm(x, body.ln_f)
    return x[-1:] @ model.lm_head.weight.T, zs


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@torch.no_grad()
def test_head_patching_equals_a_hand_written_forward_that_splits_heads(tiny, family):
    """Head h of layer l: the clean run's output of that head (computed by hand from the
    weights, no hooks of ours) swapped into the corrupt run before the output projection."""
    hand = {"llama": _hand_llama, "gpt2": _hand_gpt2}[family]
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="heads", metric="logprob", progress=False)
    answer_ids = answer_token_ids(tiny, ANSWERS)
    clean_ids, corrupt_ids = tiny.encode(CLEAN)["input_ids"], tiny.encode(CORRUPT)["input_ids"]
    logits, donors = hand(tiny.model, clean_ids)
    torch.testing.assert_close(logits, tiny.model(clean_ids).logits[:, -1], rtol=0, atol=1e-5)
    for layer in range(tiny.n_layers):
        for head in range(tiny.model.config.num_attention_heads):
            def swap(at, z, layer=layer, head=head):
                if at != layer:
                    return z
                z = z.clone()
                z[:, head] = donors[layer][:, head]
                return z

            logits, _ = hand(tiny.model, corrupt_ids, swap)
            expected = torch.log_softmax(logits[0].double(), -1)[answer_ids[0]].item()
            assert result.patched_metric[layer, head] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("site", SITES[:4])
def test_patches_before_the_first_differing_token_are_exactly_zero(tiny, site):
    denoise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site=site, progress=False)
    noise = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site=site, direction="noise", progress=False)
    assert np.all(denoise.effect[:, :DIFFERING] == 0) and np.all(noise.effect[:, :DIFFERING] == 1)
    assert np.all(denoise.patched_metric[:, :DIFFERING] == denoise.corrupt_metric)
    assert denoise.effect[0, DIFFERING] != 0


def test_patching_runs_on_the_current_layer_program(tiny):
    tiny.set_program([0, 1, 1, 2, 3])
    try:
        result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="attn_out", progress=False)
        serial = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="attn_out", batch_size=1, progress=False)
        assert result.effect.shape == (5, len(CLEAN)) and result.steps == [0, 1, 1, 2, 3]
        assert result.row_labels[2] == "2 (block 1)"
        np.testing.assert_allclose(result.patched_metric, serial.patched_metric, atol=1e-5)
        assert tiny.program.steps == (0, 1, 1, 2, 3)
    finally:
        tiny.reset()


# -- oracle 9 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("site", SITES)
def test_attribution_is_zero_when_clean_equals_corrupt_and_the_gradient_is_real(tiny, site):
    """Zero for a source equal to the base; for a source = base + a small random perturbation
    of every cell, each step's estimates sum to that perturbation's effect on the metric
    (central finite difference), so a gradient replaced by noise fails here too."""
    tiny.model.double()
    answer_ids = answer_token_ids(tiny, ANSWERS)
    clean, _ = _sides(tiny, site)
    assert np.all(_attribution(tiny, clean, clean, site, answer_ids, "logit_diff") == 0)
    assert all(p.grad is None for p in tiny.model.parameters())
    generator = torch.Generator().manual_seed(3)
    noise = 3e-4 * torch.randn(clean.states[site].shape, generator=generator, dtype=torch.float64)
    nudged = _Side(clean.inputs, {**clean.states, site: clean.states[site] + noise}, clean.logits, clean.keys_values)
    estimate = _attribution(tiny, clean, nudged, site, answer_ids, "logit_diff")

    def metric_with(step, delta):
        edit = nm.Edit(step=step, site=site, op="add", value=delta)
        with torch.no_grad():
            return metric_values(nm.run(tiny, clean.inputs, edits=[edit]).logits[:, -1], answer_ids, "logit_diff").item()

    for step in (0, tiny.n_layers - 1):
        central = (metric_with(step, noise[step]) - metric_with(step, -noise[step])) / 2
        assert estimate[step].sum() == pytest.approx(central, rel=1e-2, abs=1e-9)


@pytest.mark.parametrize("site", SITES)
def test_attribution_matches_finite_differences(tiny, site):
    """Central differences in float64 (some families' norms compute in float32 inside, so the
    step cannot be tiny)."""
    tiny.model.double()
    answer_ids = answer_token_ids(tiny, ANSWERS)
    clean, corrupt = _sides(tiny, site)
    estimate = _attribution(tiny, corrupt, clean, site, answer_ids, "logprob")

    def nudged_metric(step, col, scale):
        difference = clean.states[site][step] - corrupt.states[site][step]
        if site == "heads":
            edits = [nm.Edit(step=step, site=site, op="add", value=scale * difference[:, :, [col]], heads=[col])]
        else:
            edits = [nm.Edit(step=step, site=site, op="add", value=scale * difference[:, col], positions=[col])]
        with torch.no_grad():
            return metric_values(nm.run(tiny, corrupt.inputs, edits=edits).logits[:, -1], answer_ids, "logprob").item()

    eps = 1e-2
    for step in (0, 1, tiny.n_layers - 1):
        col = int(np.argmax(np.abs(estimate[step])))  # the cell that matters most at this step
        central = (nudged_metric(step, col, eps) - nudged_metric(step, col, -eps)) / (2 * eps)
        assert estimate[step, col] == pytest.approx(central, rel=1e-2, abs=1e-6)


def test_both_methods_side_by_side_with_their_correlation(tiny):
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, method="both", progress=False)
    assert result.attribution.shape == result.effect.shape
    # At step 0 only one position differs, so attribution is exactly zero elsewhere.
    assert np.all(np.delete(result.attribution[0], DIFFERING) == 0)
    pearson = np.corrcoef(result.effect.ravel(), result.attribution.ravel())[0, 1]
    assert result.correlation == pytest.approx(pearson, abs=1e-12) and f"r={pearson:.3f}" in repr(result)
    alone = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, method="attribution", progress=False)
    assert alone.effect is None and alone.topk_ids is None
    np.testing.assert_allclose(alone.to_numpy(), result.attribution, atol=1e-6)


# -- interrupts and bad input ------------------------------------------------------------------


def test_an_interrupt_keeps_finished_steps_and_leaves_the_model_untouched(tiny):
    ids = tiny.encode(CLEAN)["input_ids"]
    reference = tiny.model(ids, use_cache=False).logits
    hooks_before = _hook_counts(tiny.model)
    calls = {"n": 0}

    def interrupt_late(*_):
        calls["n"] += 1
        if calls["n"] > 4:  # after the two recording runs and step 0 (cells 5-7, then 8: two batches)
            raise KeyboardInterrupt

    handle = tiny.blocks[-1].register_forward_hook(interrupt_late)
    try:
        result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, batch_size=4, progress=False)
    finally:
        handle.remove()
    assert result.metadata["interrupted"]
    finished = np.isfinite(result.effect).all(axis=1)
    assert finished[0] and not finished[-1]
    assert _hook_counts(tiny.model) == hooks_before
    assert torch.equal(tiny.model(ids, use_cache=False).logits, reference)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(answers=["ab", "X"]), r"'ab' is 2 tokens \('a' \+ 'b'\)"),
        (dict(answers=["e"]), "needs two answers"),
        (dict(site="resid_mid"), "Unknown site 'resid_mid'"),
        (dict(metric="kl"), "Unknown metric"),
        (dict(direction="sideways"), "Unknown direction"),
        (dict(method="guess"), "Unknown method"),
        (dict(clean=""), "clean prompt is missing"),
        (dict(corrupt=None), "corrupt prompt is missing"),
        (dict(corrupt="ab cdXfghi"), "9 tokens and the corrupt one 10"),
        (dict(answers=["e", "e"]), "normalised effect is undefined"),
        (dict(corrupt=CLEAN), "the same tokens, so every patch changes nothing and the normalised effect is undefined"),
        (dict(top_k=0), "top_k must be between 1 and 128"),
        (dict(top_k=129), "top_k must be between 1 and 128"),
        (dict(batch_size=0), "batch_size must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_model_unchanged(tiny, kwargs, message):
    ids = tiny.encode(CLEAN)["input_ids"]
    reference = tiny.model(ids, use_cache=False).logits
    arguments = dict(clean=CLEAN, corrupt=CORRUPT, answers=list(ANSWERS)) | kwargs
    blocks_run = []
    handle = tiny.blocks[0].register_forward_hook(lambda *_: blocks_run.append(1))
    try:
        with pytest.raises(nm.NeuroMagicsError, match=message) as error:
            nm.patch(tiny, arguments.pop("clean"), arguments.pop("corrupt"), arguments.pop("answers"), progress=False,
                     **arguments)
    finally:
        handle.remove()
    assert "\n" not in str(error.value)
    if "normalised effect is undefined" not in message or "same tokens" in message:
        assert not blocks_run  # refused before any forward
    assert tiny.program.is_identity and torch.equal(tiny.model(ids, use_cache=False).logits, reference)


# -- results and widget ------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama"])
def test_result_saves_loads_and_exports(tiny, tmp_path):
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, method="both", progress=False)
    loaded = nm.load_result(result.save(tmp_path / "patch"))
    assert isinstance(loaded, PatchResult)
    for name in ("effect", "patched_metric", "attribution", "topk_ids", "topk_probs"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.clean_tokens == list(CLEAN) and loaded.metadata["site"] == "resid_pre"
    assert repr(loaded) == repr(result)
    frame = result.to_pandas()
    assert len(frame) == result.effect.size
    assert {"step", "block", "position", "clean_token", "effect", "attribution"} <= set(frame.columns)
    assert frame.loc[(frame.step == 0) & (frame.position == DIFFERING), "clean_token"].item() == "e"
    figure = result.figure()
    assert np.asarray(figure.data[0].z).shape == result.effect.shape
    assert result.col_labels[DIFFERING] == "e/X"


@pytest.mark.parametrize("family", ["gpt2"])
def test_widget_shows_top_tokens_per_cell_and_the_selected_patch(tiny):
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, top_k=3, progress=False)
    widget = result.widget()
    heatmap = widget.heatmap
    assert heatmap.values.shape == (2, tiny.n_layers, len(CLEAN))
    assert [m["name"] for m in heatmap.metrics] == ["effect", "metric"]
    assert heatmap.metrics[0]["scale"] == "diverging" and heatmap.metrics[0]["center"] == 0
    assert heatmap.detail_token_ids.shape == (tiny.n_layers, len(CLEAN), 3)
    top = heatmap.detail_vocab[heatmap.detail_token_ids[1, 2, 0]]
    assert top == result.token(result.topk_ids[1, 2, 0])
    assert "Click a cell" in widget.panel.value
    heatmap.selected = [1, 2]
    assert "patched: layer 1, position 2" in widget.panel.value and "clean" in widget.panel.value
    heatmap.selected = []
    assert "Click a cell" in widget.panel.value
    bundle = result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/plain"].startswith("PatchResult(")


# -- causal tracing ---------------------------------------------------------------------------


def test_causal_tracing_restoring_the_only_noised_embedding_gives_1(tiny, tmp_path):
    prompt = "The Q is in"
    result = trace(tiny, prompt, "Q", samples=3, window=2, progress=False)
    position = prompt.index("Q")
    assert result.subject_positions == [position]
    effect = result.to_numpy()
    assert effect.shape == (3, tiny.n_layers, len(prompt))
    # (compared as probabilities: the normalisation divides by a small clean - noised gap)
    assert result.probs[0, 0, position] == pytest.approx(result.clean_prob, abs=1e-6)
    np.testing.assert_allclose(np.delete(result.probs[0, 0], position), result.corrupt_prob, atol=1e-6)
    # Before the subject nothing is noised: restoring those positions changes nothing.
    np.testing.assert_allclose(result.probs[:, :, :position], result.corrupt_prob, atol=1e-6)
    assert result.clean_prob != result.corrupt_prob
    loaded = nm.load_result(result.save(tmp_path / "trace"))
    assert isinstance(loaded, TraceResult)
    np.testing.assert_array_equal(loaded.to_numpy(), effect)
    assert len(result.to_pandas()) == effect.size and len(result.figure().data) == 3
    assert result.widget().heatmap.values.shape == effect.shape


@pytest.mark.parametrize("family", ["llama"])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(top_k=0), "top_k must be between 1 and 128"), (dict(top_k=100000), "top_k must be between 1 and 128"),
     (dict(batch_size=0), "batch_size must be at least 1"), (dict(answer="ab"), "is 2 tokens")],
)
def test_bad_trace_options_are_refused_before_any_work(tiny, kwargs, message):
    blocks_run = []
    handle = tiny.blocks[0].register_forward_hook(lambda *_: blocks_run.append(1))
    try:
        with pytest.raises(nm.NeuroMagicsError, match=message):
            trace(tiny, "The Q is in", "Q", progress=False, **kwargs)
    finally:
        handle.remove()
    assert not blocks_run


def test_causal_tracing_needs_a_subject_in_the_prompt(tiny):
    with pytest.raises(nm.NeuroMagicsError, match="does not occur"):
        trace(tiny, "The Q is in", "Eiffel", progress=False)
    with pytest.raises(nm.NeuroMagicsError, match="needs --subject"):
        trace(tiny, "The Q is in", "", progress=False)


# -- the default model -----------------------------------------------------------------------

IOI_CLEAN = "When Mary and John went to the store, John gave a drink to"
IOI_CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
IOI_ANSWERS = (" Mary", " John")


@pytest.mark.integration
def test_default_model_indirect_object_patching(default_subject):
    subject = default_subject
    result = nm.patch(subject, IOI_CLEAN, IOI_CORRUPT, IOI_ANSWERS, method="both", progress=False)
    assert result.clean_metric > 0 > result.corrupt_metric  # the model gets the indirect object right
    differing = [i for i, (a, b) in enumerate(zip(result.clean_tokens, result.corrupt_tokens)) if a != b]
    assert len(differing) == 1
    assert result.effect[0, differing[0]] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.delete(result.effect[0], differing), 0.0, atol=1e-4)
    layers = [subject.n_layers // 2]
    np.testing.assert_allclose(result.effect[layers], naive_sweep(subject, IOI_CLEAN, IOI_CORRUPT, IOI_ANSWERS,
                                                                  layers=layers), atol=1e-4)
    assert result.correlation > 0.5
    clean, corrupt = _sides(subject, "resid_post", IOI_CLEAN, IOI_CORRUPT)
    last = subject.n_layers - 1
    logits = _patched_logits(subject, corrupt, clean, "resid_post", last, [len(result.clean_tokens) - 1])
    answer_ids = answer_token_ids(subject, IOI_ANSWERS)
    assert metric_values(logits, answer_ids, "logit_diff").item() == pytest.approx(result.clean_metric, abs=1e-4)


@pytest.mark.integration
def test_default_model_attribution_zero_and_finite_difference(default_subject):
    subject = default_subject
    answer_ids = answer_token_ids(subject, IOI_ANSWERS)
    clean, corrupt = _sides(subject, "resid_pre", IOI_CLEAN, IOI_CORRUPT)
    assert np.all(_attribution(subject, clean, clean, "resid_pre", answer_ids, "logit_diff") == 0)
    estimate = _attribution(subject, corrupt, clean, "resid_pre", answer_ids, "logit_diff")
    step, col = 4, int(np.argmax(np.abs(estimate[4])))
    eps = 1e-2
    difference = clean.states["resid_pre"][step] - corrupt.states["resid_pre"][step]
    edit = nm.Edit(step=step, op="add", value=eps * difference[:, col], positions=[col])
    with torch.no_grad():
        nudged = nm.run(subject, corrupt.inputs, edits=[edit]).logits[:, -1]
    finite_difference = (metric_values(nudged, answer_ids, "logit_diff") - metric_values(corrupt.logits, answer_ids, "logit_diff")).item() / eps
    assert estimate[step, col] == pytest.approx(finite_difference, rel=0.05)
