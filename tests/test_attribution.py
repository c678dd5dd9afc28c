"""Attribution (oracle 16 of tests/ORACLES.md): every number is checked against something the
product did not compute: HF's own forwards and autograd, hand-written rollout and head splits."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.attribution import AttributionResult, attribute
from required_tools import missing_tool
from tiny_models import tiny_model, tiny_tokenizer

PROMPT = "hello world"


def llama() -> nm.Subject:
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    subject.model.generation_config.eos_token_id = None
    return subject


def ids_of(subject: nm.Subject, text: str = PROMPT) -> torch.Tensor:
    return subject.tokenizer(text, return_tensors="pt")["input_ids"]


def token(subject: nm.Subject, text: str) -> int:
    (only,) = subject.tokenizer(text, add_special_tokens=False)["input_ids"]
    return only


@torch.no_grad()
def hf_logits(subject: nm.Subject, ids: torch.Tensor | None = None, embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Last-position logits (float64) of HF's own forward, pre-softcap where the family has one."""
    logits = subject.model(input_ids=ids, inputs_embeds=embeds).logits[0, -1].double()
    cap = getattr(subject.model.config, "final_logit_softcapping", None)
    return logits if cap is None else cap * torch.atanh(logits / cap)


@torch.no_grad()
def hf_logprob(subject, target_id, ids=None, embeds=None) -> float:
    logits = subject.model(input_ids=ids, inputs_embeds=embeds).logits[0, -1].double()
    return float(logits.log_softmax(-1)[target_id])


def test_integrated_gradients_are_complete_on_every_family(tiny):
    """Oracle: sum of IG attributions = f(x) - f(baseline), both sides from HF's own forward on the
    prompt and on the all-pad prompt (the pad baseline), within 1% with 64 steps. (Fails with the
    Gauss-Legendre rule swapped for a 2-step left Riemann sum, or without Captum's (x - baseline)
    factor.)"""
    result = attribute(tiny, PROMPT, method="ig", steps=64, keep_first=False, dla=False, progress=False)
    ids = ids_of(tiny)
    target_id = result.target_ids[0]
    difference = hf_logprob(tiny, target_id, ids) - hf_logprob(tiny, target_id, torch.full_like(ids, tiny.pad_token_id))
    total = float(result.scores["ig"][0].astype(np.float64).sum())
    assert abs(total - difference) <= 0.01 * abs(difference), (total, difference)
    assert result.ig_relative_gap[0] < 0.01


def test_integrated_gradients_equal_captums():
    """Oracle: Captum's ``IntegratedGradients`` (Gauss-Legendre) on HF's forward from
    ``inputs_embeds``, with its convergence delta as the gap. (Fails with the Legendre weights not
    halved onto [0, 1], or the nodes left on [-1, 1].)"""
    try:
        import captum.attr as captum
    except ImportError:
        missing_tool("captum is not installed (pip install -e .[test]; make test installs it)")
    subject = llama()
    result = attribute(subject, PROMPT, target="a", foil="x", method="ig", steps=16, baseline="zero",
                       keep_first=False, dla=False, progress=False)
    a, x = token(subject, "a"), token(subject, "x")

    def logit_difference(embeds):
        logits = subject.model(inputs_embeds=embeds).logits[:, -1]
        return logits[:, a] - logits[:, x]

    embeds = subject.model.model.embed_tokens(ids_of(subject)).detach()
    attributions, delta = captum.IntegratedGradients(logit_difference).attribute(
        embeds, baselines=torch.zeros_like(embeds), n_steps=16, method="gausslegendre", return_convergence_delta=True)
    np.testing.assert_allclose(result.scores["ig"][0], attributions[0].sum(-1).detach().numpy(), rtol=1e-4, atol=1e-6)
    assert result.ig_gap[0] == pytest.approx(abs(float(delta)), abs=1e-5)


def test_integrated_gradients_keep_the_first_token_by_default():
    """Oracle: HF's forward on the pad prompt with the first token put back is where the path
    starts; the first token's IG is exactly 0 and the rest are complete."""
    subject = llama()
    result = attribute(subject, PROMPT, target="a", foil="x", method="ig", steps=64, dla=False, progress=False)
    ids = ids_of(subject)
    start = torch.full_like(ids, subject.pad_token_id)
    start[0, 0] = ids[0, 0]
    clean, begin = hf_logits(subject, ids), hf_logits(subject, start)
    a, x = token(subject, "a"), token(subject, "x")
    difference = float((clean[a] - clean[x]) - (begin[a] - begin[x]))
    assert result.scores["ig"][0, 0] == 0
    assert result.baseline_values[0] == pytest.approx(float(begin[a] - begin[x]), abs=1e-5)
    assert float(result.scores["ig"][0].astype(np.float64).sum()) == pytest.approx(difference, rel=0.01)


def test_saliency_and_input_x_gradient_equal_hf_autograd():
    """Oracle: torch.autograd on HF's forward from ``inputs_embeds`` (log_softmax of its logits),
    not the runner: saliency is the gradient's L2 norm per token, input x gradient sum_d x * grad.
    (Fails with the gradient taken of the logit instead of the log-prob.)"""
    subject = llama()
    result = attribute(subject, PROMPT, method=["saliency", "input_x_grad"], dla=False, progress=False)
    embeds = subject.model.model.embed_tokens(ids_of(subject)).detach().requires_grad_(True)
    logprob = subject.model(inputs_embeds=embeds).logits[0, -1].log_softmax(-1)[result.target_ids[0]]
    (gradient,) = torch.autograd.grad(logprob, embeds)
    np.testing.assert_allclose(result.scores["saliency"][0], gradient[0].norm(dim=-1).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(result.scores["input_x_grad"][0], (gradient * embeds)[0].sum(-1).detach().numpy(),
                               rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_occlusion_equals_explicit_forwards(family):
    """Oracle: one HF forward per occluded token / span, the span's stream replaced by the pad
    token's (GPT-2: its position embeddings kept), scored as logit(target) - logit(foil).
    (Fails when the batch rows are shifted by one span.)"""
    subject = nm.Subject(tiny_model(family), tiny_tokenizer())
    ids = ids_of(subject)
    target, foil = token(subject, "a"), token(subject, "x")
    spans = [(0, 2), (2, 3), (5, 9)]
    for given in (None, spans):
        result = attribute(subject, PROMPT, target="a", foil="x", method="occlusion", spans=given, dla=False,
                           progress=False)
        expected = np.zeros(ids.shape[1])
        clean = hf_logits(subject, ids)
        for start, end in given or [(p, p + 1) for p in range(ids.shape[1])]:
            occluded = ids.clone()
            occluded[0, start:end] = subject.pad_token_id
            logits = hf_logits(subject, occluded)
            expected[start:end] = float((clean[target] - clean[foil]) - (logits[target] - logits[foil]))
        np.testing.assert_allclose(result.scores["occlusion"][0], expected, rtol=1e-4, atol=1e-6)


def test_rollout_equals_a_hand_product_of_hf_attentions():
    """Oracle: HF's ``output_attentions`` (not the runner's capture), rolled out by hand in numpy:
    R = prod over layers (last on the left) of 0.5 (mean_heads A + I); the row of the last token.
    (Fails with the product taken in the wrong order, or without the identity.)"""
    subject = llama()
    result = attribute(subject, PROMPT, method="rollout", dla=False, progress=False)
    with torch.no_grad():
        attentions = subject.model(ids_of(subject), output_attentions=True).attentions
    n = attentions[0].shape[-1]
    flow = np.eye(n)[-1]  # how much of the last token's state comes from each position, layer by layer
    for layer in reversed(attentions):
        mixed = 0.5 * (layer[0].double().mean(0).numpy() + np.eye(n))
        flow = flow @ mixed
    np.testing.assert_allclose(result.scores["rollout"][0], flow, rtol=1e-5, atol=1e-7)
    assert abs(result.scores["rollout"][0].sum() - 1) < 1e-5  # rows of a product of stochastic matrices


def test_dla_parts_sum_to_the_logit_difference_on_every_family(tiny):
    """Oracle: HF's own logits (pre-softcap for Gemma2, recovered with atanh): embedding + heads
    (or attention layers) + attention biases + MLPs + biases = logit(target) - logit(foil).
    (Fails with the final norm's weight taken as w instead of Gemma's 1 + w, or with the
    LayerNorm's centring left out.)"""
    result = attribute(tiny, PROMPT, target="a", foil="x", method="saliency", progress=False)
    logits = hf_logits(tiny, ids_of(tiny))
    expected = float(logits[token(tiny, "a")] - logits[token(tiny, "x")])
    assert result.dla["value"].sum() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert result.dla_total == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert set(result.dla.columns) >= {"component", "layer", "head", "value"}
    if result.dla_parts.head_sources is not None:  # each head's parts over source positions add up to it
        np.testing.assert_allclose(result.dla_parts.head_sources.sum(-1), result.dla_parts.heads, atol=1e-6)


def _final_norm_input(subject, ids) -> torch.Tensor:
    seen = {}
    norm = subject.adapter.final_norm_module(subject.model)
    handle = norm.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0].detach()))
    try:
        with torch.no_grad():
            subject.model(ids)
    finally:
        handle.remove()
    return seen["x"][0, -1].double()


def test_dla_per_head_equals_a_hand_split_of_the_attention_output_llama():
    """Oracle: a hand-written head split from HF's forward with the test's own hooks: each
    o_proj's input cut into head slices times the matching columns of W_O, read through
    ``w * (W_U[t] - W_U[f]) / rms(final)``; per source position: HF's attention weights times
    v_proj's output (kv heads repeated) through the same columns. (Fails with the heads read off
    the wrong slice: h + 1 instead of h.)"""
    subject = llama()
    result = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    ids = ids_of(subject)
    config, model = subject.model.config, subject.model
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = config.hidden_size // n_heads
    z, values = {}, {}
    handles = []
    for k, layer in enumerate(model.model.layers):
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(
            lambda module, args, k=k: z.__setitem__(k, args[0][0].detach().double())))
        handles.append(layer.self_attn.v_proj.register_forward_hook(
            lambda module, args, out, k=k: values.__setitem__(k, out[0].detach().double())))
    try:
        with torch.no_grad():
            attentions = model(ids, output_attentions=True).attentions
    finally:
        for handle in handles:
            handle.remove()
    final = _final_norm_input(subject, ids)
    norm = model.model.norm
    direction = (model.lm_head.weight[token(subject, "a")] - model.lm_head.weight[token(subject, "x")]).detach().double()
    readout = norm.weight.detach().double() * direction / torch.sqrt(final.pow(2).mean() + norm.variance_epsilon)
    for k, layer in enumerate(model.model.layers):
        w_o = layer.self_attn.o_proj.weight.detach().double()  # [d, heads * head_dim]
        v = values[k].view(-1, n_kv, head_dim).repeat_interleave(n_heads // n_kv, dim=1)  # [T, heads, head_dim]
        for h in range(n_heads):
            columns = w_o[:, h * head_dim:(h + 1) * head_dim]
            expected = float((columns @ z[k][-1, h * head_dim:(h + 1) * head_dim]) @ readout)
            assert result.dla_parts.heads[k, h] == pytest.approx(expected, rel=1e-4, abs=1e-7)
            weights = attentions[k][0, h, -1].double()  # [T]
            per_source = (weights[:, None] * v[:, h]) @ columns.T @ readout
            np.testing.assert_allclose(result.dla_parts.head_sources[k, h], per_source.numpy(), rtol=1e-4, atol=1e-7)


def test_dla_per_head_equals_a_hand_split_gpt2():
    """Oracle: as for Llama, with GPT-2's Conv1D (``x @ W + b``: heads are row slices of W, the
    bias its own part) and the LayerNorm read with its centring and bias. (Fails with the
    attention bias dropped from the rows.)"""
    subject = nm.Subject(tiny_model("gpt2"), tiny_tokenizer())
    model = subject.model
    with torch.no_grad():  # GPT-2 initialises biases to zero: give them values to find
        for bias in [block.attn.c_proj.bias for block in model.transformer.h] + [model.transformer.ln_f.bias]:
            bias.normal_(0, 0.5)
    result = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    ids = ids_of(subject)
    n_heads, head_dim = model.config.n_head, model.config.n_embd // model.config.n_head
    z, handles = {}, []
    for k, block in enumerate(model.transformer.h):
        handles.append(block.attn.c_proj.register_forward_pre_hook(
            lambda module, args, k=k: z.__setitem__(k, args[0][0, -1].detach().double())))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for handle in handles:
            handle.remove()
    final = _final_norm_input(subject, ids)
    ln = model.transformer.ln_f
    direction = (model.lm_head.weight[token(subject, "a")] - model.lm_head.weight[token(subject, "x")]).detach().double()
    weighted = ln.weight.detach().double() * direction
    readout = (weighted - weighted.mean()) / torch.sqrt(final.var(unbiased=False) + ln.eps)
    frame = result.dla
    for k, block in enumerate(model.transformer.h):
        w = block.attn.c_proj.weight.detach().double()  # [heads * head_dim, d]
        for h in range(n_heads):
            expected = float((z[k][h * head_dim:(h + 1) * head_dim] @ w[h * head_dim:(h + 1) * head_dim]) @ readout)
            assert result.dla_parts.heads[k, h] == pytest.approx(expected, rel=1e-4, abs=1e-7)
        bias_row = frame[(frame.component == "attn_bias") & (frame.layer == k)]
        assert float(bias_row.value.iloc[0]) == pytest.approx(float(block.attn.c_proj.bias.detach().double() @ readout), rel=1e-4)
    assert float(frame[frame.component == "bias"].value.iloc[0]) == pytest.approx(float(ln.bias.detach().double() @ direction))


def test_positions_that_cannot_matter_get_exactly_zero():
    """Oracle: causality. Generated token k is predicted at position n_prompt - 1 + k, so every
    later source gets exactly 0 under every method; rollout rows are stochastic over the rest.
    (Fails with the scored position off by one to the right.)"""
    subject = llama()
    result = attribute(subject, PROMPT, generate=3, steps=8, progress=False)
    assert result.scores["ig"].shape == (3, len(ids_of(subject)[0]) + 2)
    assert result.targets == subject.token_pieces(result.token_ids[result.n_prompt:].tolist())
    for method in result.methods:
        for k, position in enumerate(result.target_positions):
            assert np.all(result.scores[method][k, position + 1:] == 0), (method, k)
            if method in ("saliency", "rollout", "occlusion"):
                assert np.any(result.scores[method][k, : position + 1] != 0), (method, k)


def test_generated_targets_are_the_models_greedy_tokens_and_their_logprobs():
    """Oracle: HF's ``generate`` (greedy) and HF's log_softmax at each target position."""
    subject = llama()
    result = attribute(subject, PROMPT, generate=3, method="occlusion", dla=False, progress=False)
    ids = ids_of(subject)
    output = subject.model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=subject.pad_token_id)
    assert result.target_ids == output[0, ids.shape[1]:].tolist()
    for k, position in enumerate(result.target_positions):
        expected = hf_logprob(subject, result.target_ids[k], output[:, : position + 1])
        assert result.values[k] == pytest.approx(expected, abs=1e-5)


def test_attribution_respects_the_layer_program_and_interventions():
    """Oracle: HF's forward under the same program (the subject installs it), and zero
    ablation: an ablated head writes exactly nothing, so its DLA is exactly 0; steering
    shows as ``other`` and the parts still sum to HF's logits."""
    subject = llama()
    subject.set_program([0, 1, 2, 1, 2, 3])
    result = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    logits = hf_logits(subject, ids_of(subject))
    assert result.dla["value"].sum() == pytest.approx(float(logits[token(subject, "a")] - logits[token(subject, "x")]),
                                                      rel=1e-4, abs=1e-6)
    assert result.dla_parts.heads.shape == (6, 4) and result.program_steps == [0, 1, 2, 1, 2, 3]
    nm.ablate(subject, heads="1.2")
    ablated = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    assert np.all(ablated.dla_parts.heads[[1, 3], 2] == 0)
    # its weights x values no longer are what it wrote: no per-source split for it, the others keep theirs
    assert np.isnan(ablated.dla_parts.head_sources[[1, 3], 2]).all()
    assert np.isfinite(np.delete(ablated.dla_parts.head_sources, 2, axis=1)).all()
    assert ablated.metadata["interventions"][0]["kind"] == "ablate"
    nm.steer(subject, block=2, vector=0.05 * torch.randn(32), coef=1.0)
    steered = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    logits = hf_logits(subject, ids_of(subject))
    assert steered.dla["value"].sum() == pytest.approx(float(logits[token(subject, "a")] - logits[token(subject, "x")]),
                                                       rel=1e-4, abs=1e-6)
    assert "other" in set(steered.dla.component)


def test_the_attention_patterns_are_hfs():
    """Oracle: HF's ``output_attentions`` on the same tokens (stored as float16 for the explorer);
    without DLA and rollout none are kept, and the widget is the attribution view alone."""
    from neuro_magics.widgets import AttributionWidget

    subject = llama()
    result = attribute(subject, PROMPT, method="occlusion", progress=False)
    with torch.no_grad():
        attentions = subject.model(ids_of(subject), output_attentions=True).attentions
    np.testing.assert_allclose(result.attention.astype(np.float32), torch.cat(attentions).numpy(), atol=1e-3)
    assert result.n_kv_heads == 2
    bare = attribute(subject, PROMPT, method="occlusion", dla=False, progress=False)
    assert bare.attention is None and isinstance(bare.widget(), AttributionWidget)


def test_save_and_load_round_trip(tmp_path):
    subject = llama()
    result = attribute(subject, PROMPT, generate=2, steps=4, progress=False)
    loaded = nm.load_result(result.save(tmp_path / "attribution"))
    assert isinstance(loaded, AttributionResult)
    for method in result.methods:
        np.testing.assert_array_equal(loaded.scores[method], result.scores[method])
    assert loaded.dla.equals(result.dla)
    assert loaded.targets == result.targets and loaded.tokens == result.tokens
    assert loaded.to_pandas().equals(result.to_pandas())
    np.testing.assert_array_equal(loaded.attention, result.attention)
    assert loaded.n_kv_heads == result.n_kv_heads


@pytest.mark.parametrize("kwargs, message", [
    (dict(target="ab"), re.escape("The target 'ab' is 2 tokens ('a' + 'b')")),
    (dict(target="a", foil="xy"), re.escape("The foil 'xy' is 2 tokens ('x' + 'y')")),
    (dict(target="a", foil="a"), "same token"),
    (dict(prompt=""), "Empty prompt"),
    (dict(prompt="   "), "Empty prompt"),
    (dict(method="lime"), "Unknown method 'lime'"),
    (dict(steps=0), "--steps must be at least 1"),
    (dict(generate=2, target="a"), "drop --target"),
    (dict(spans=[(3, 2)]), "Span 3:2"),
    (dict(spans=[(0, 99)]), "Span 0:99"),
    (dict(baseline="mean"), "Unknown baseline"),
])
def test_bad_input_is_one_line_and_leaves_the_model_as_it_was(kwargs, message):
    subject = llama()
    subject.set_program([0, 1, 1, 2, 3])
    before = hf_logits(subject, ids_of(subject))
    arguments = {"prompt": PROMPT, **kwargs}
    with pytest.raises(nm.NeuroMagicsError, match=message) as caught:
        attribute(subject, arguments.pop("prompt"), progress=False, **arguments)
    assert "\n" not in str(caught.value)
    assert subject.program.steps == (0, 1, 1, 2, 3) and not subject.interventions
    assert subject.model.config._attn_implementation == "eager"
    assert torch.equal(hf_logits(subject, ids_of(subject)), before)


def test_a_failure_mid_run_restores_the_attention_implementation():
    """The eager switch is undone on the way out (the tiny model runs SDPA here)."""
    subject = nm.Subject(tiny_model("llama", attn="sdpa"), tiny_tokenizer())
    with pytest.raises(nm.NeuroMagicsError):
        attribute(subject, PROMPT, spans=[(0, 99)], progress=False)
    assert subject.model.config._attn_implementation == "sdpa"
    result = attribute(subject, PROMPT, method="rollout", dla=False, progress=False)
    assert subject.model.config._attn_implementation == "sdpa"
    assert np.isfinite(result.scores["rollout"]).all()


def test_an_interrupt_keeps_the_finished_targets_and_no_hook(monkeypatch):
    """Ctrl-C during the second target's gradients: the first row stays, the rest is NaN, the
    result says so, and no hook is left on any module."""
    import neuro_magics.analyses.attribution as engine

    subject = llama()
    real, calls = engine._gradient, []

    def interrupted_second(score, embeddings):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(score, embeddings)

    monkeypatch.setattr(engine, "_gradient", interrupted_second)
    result = attribute(subject, PROMPT, generate=3, method=["saliency", "occlusion"], progress=False)
    assert np.isfinite(result.scores["saliency"][0]).all() and np.isnan(result.scores["saliency"][1:]).all()
    assert np.isfinite(result.scores["occlusion"]).all() and result.metadata["interrupted"] is True
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in subject.model.modules())
    assert subject.model.config._attn_implementation == "eager"


@pytest.mark.integration
def test_default_model_paris(default_subject):
    """The real model: DLA of logit(' Paris') - logit(' London') sums to HF's difference, the
    reported IG gap is |sum - (f(x) - f(start))| with both ends from HF's forward, ' Paris' is
    the model's own answer and occluding 'iffel' hurts it most (after the query token ' of')."""
    prompt = "The Eiffel Tower is in the city of"
    result = attribute(default_subject, prompt, target=" Paris", foil=" London", method=["ig", "occlusion"],
                       steps=8, progress=False)
    ids = default_subject.encode(prompt)["input_ids"]
    start = torch.full_like(ids, default_subject.pad_token_id)
    start[0, 0] = ids[0, 0]
    logits, begin = hf_logits(default_subject, ids), hf_logits(default_subject, start)
    paris, london = token(default_subject, " Paris"), token(default_subject, " London")
    assert int(logits.argmax()) == paris
    assert result.dla["value"].sum() == pytest.approx(float(logits[paris] - logits[london]), rel=1e-3)
    difference = float((logits[paris] - logits[london]) - (begin[paris] - begin[london]))
    total = float(result.scores["ig"][0].astype(np.float64).sum())
    assert result.ig_gap[0] == pytest.approx(abs(total - difference), abs=2e-3)
    assert result.sources[int(np.argmax(result.scores["occlusion"][0, :-1]))] == "iffel"  # the last is the query


# -- the magic ------------------------------------------------------------------------------------


def test_magic_cell_and_line_forms(tiny_in_shell, shell):
    """%%attribute takes the cell literally as the prompt; %attribute the words after the options."""
    result = shell.run_cell_magic("attribute", '--target "a" --foil "x" --method ig,occlusion --steps 16 -o res',
                                  "hello world\n")
    assert isinstance(result, AttributionResult) and shell.user_ns["res"] is result
    assert result.methods == ["ig", "occlusion"] and result.prompt == "hello world" and result.foil == "x"
    direct = attribute(tiny_in_shell, "hello world", target="a", foil="x", method=["ig", "occlusion"], steps=16,
                       progress=False)
    np.testing.assert_array_equal(result.scores["occlusion"], direct.scores["occlusion"])
    line = shell.run_line_magic("attribute", "--generate 2 --method rollout --spans 0:2,2:3 --no-dla hello")
    assert len(line.targets) == 2 and line.dla_parts is None and line.spans == [(0, 2), (2, 3)]


@pytest.mark.parametrize("line, cell, message", [
    ("--steps 0", "hi", "--steps must be at least 1"),
    ("--generate -1", "hi", "--generate must be 0 or more"),
    ("-o 1x", "hi", "not a valid Python name"),
    ("--method lime", "hi", "Unknown method 'lime'"),
    ("--target ab", "hi", "is 2 tokens ('a' + 'b')"),
    ("--target a --foil a", "hi", "same token"),
    ("--spans 1-3", "hi", "Cannot read '1-3' as a span"),
    ("", "\n", "No prompt"),
    ("hello", "world", "either on the %%attribute line or in the cell"),
])
def test_magic_bad_input_is_one_line(tiny_in_shell, shell, line, cell, message):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        shell.run_cell_magic("attribute", line, cell)
    assert type(caught.value) is UsageError and "\n" not in str(caught.value)
    assert tiny_in_shell.model.config._attn_implementation == "eager" and not tiny_in_shell.interventions


# -- views ------------------------------------------------------------------------------------------


def test_widget_and_figure_carry_the_result():
    """The widget gets every method's matrix and the DLA map as they are; a clicked head reaches
    ``result.selected_head``; the figure blanks later positions and paints the same numbers."""
    from neuro_magics.widgets import AttentionWidget, AttributionWidget, WidgetDataError

    subject = llama()
    result = attribute(subject, PROMPT, generate=2, steps=4, progress=False)
    widget, explorer = result.widget().children
    assert isinstance(widget, AttributionWidget) and isinstance(explorer, AttentionWidget)
    np.testing.assert_array_equal(explorer.patterns, result.attention)
    np.testing.assert_array_equal(widget.scores, np.stack([result.scores[m] for m in result.methods]))
    np.testing.assert_array_equal(widget.dla_heads, result.dla_parts.heads.astype(np.float32))
    assert widget.dla_summary["total"] == pytest.approx(result.dla_total)
    widget.selected_head = [2, 1]
    assert result.selected_head == {"step": 2, "block": 2, "head": 1}
    with pytest.raises(WidgetDataError):
        widget.target_index = 5
    figure = result.figure("occlusion")
    matrix = np.asarray(figure.data[0].z, dtype=float)
    assert np.isnan(matrix[0, result.target_positions[0] + 1:]).all()
    np.testing.assert_allclose(matrix[1], result.scores["occlusion"][1], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(figure.data[1].z)[:, :-1], result.dla_parts.heads)


@pytest.mark.parametrize("given_target", [True, False])
def test_saliency_alone_runs_one_pass_in_the_models_own_attention(given_target):
    """Oracle: the forwards of the first block counted by the test's own hook, and the attention
    implementation each one ran; f(x) against HF's log-prob. Saliency without DLA or rollout runs
    one forward (with its backward), plus one to find the model's own next token when no target is
    given, all in the model's SDPA; f(baseline) is not computed (fails with an extra forward for
    f(x) or f(baseline), or eager attention switched on for it)."""
    subject = llama()
    seen = []
    handle = subject.blocks[0].register_forward_hook(
        lambda module, args, output: seen.append(subject.model.config._attn_implementation))
    try:
        with subject.attention_implementation("sdpa"):
            result = attribute(subject, PROMPT, target="a" if given_target else None, method="saliency", dla=False,
                               progress=False)
    finally:
        handle.remove()
    assert seen == ["sdpa"] * (1 if given_target else 2)
    with torch.no_grad():
        assert result.values[0] == pytest.approx(hf_logprob(subject, result.target_ids[0], ids_of(subject)), rel=1e-5)
    assert np.isnan(result.baseline_values).all() and np.isnan(result.ig_gap).all()
    with subject.attention_implementation("sdpa"):
        seen.clear()
        handle = subject.blocks[0].register_forward_hook(
            lambda module, args, output: seen.append(subject.model.config._attn_implementation))
        try:
            attribute(subject, PROMPT, target="a", method="rollout", dla=False, progress=False)
        finally:
            handle.remove()
    assert seen and set(seen) == {"eager"}  # rollout needs the weights only eager attention forms


def test_dla_per_head_through_a_hooked_output_projection_equals_a_hand_split():
    """Oracle: with a LoRA hooked onto every o_proj (so each head's write runs through the module,
    not its bare weight), each head's part is its slice of o_proj's input times the matching
    columns of ``W_O + alpha / r * B A`` merged by the test, read through the frozen final norm
    (fails with the bare weight used where a hook is on the projection)."""
    import test_finetune as finetune_tests
    from neuro_magics.analyses import finetune as ft

    subject = llama()
    targets = [f"{k}.self_attn.o_proj" for k in range(len(subject.blocks))]
    adapter = finetune_tests.random_adapter(subject, rank=2, alpha=4.0, targets=targets)
    ft.adapter_intervention(subject, adapter).install(subject)
    result = attribute(subject, PROMPT, target="a", foil="x", method="saliency", progress=False)
    ids = ids_of(subject)
    model = subject.model
    n_heads = model.config.num_attention_heads
    head_dim = model.config.hidden_size // n_heads
    z, handles = {}, []
    for k, layer in enumerate(model.model.layers):
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(
            lambda module, args, k=k: z.__setitem__(k, args[0][0, -1].detach().double())))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for handle in handles:
            handle.remove()
    final = _final_norm_input(subject, ids)
    norm = model.model.norm
    direction = (model.lm_head.weight[token(subject, "a")] - model.lm_head.weight[token(subject, "x")]).detach().double()
    readout = norm.weight.detach().double() * direction / torch.sqrt(final.pow(2).mean() + norm.variance_epsilon)
    with torch.no_grad():
        logits = hf_logits(subject, ids)
    assert result.dla["value"].sum() == pytest.approx(float(logits[token(subject, "a")] - logits[token(subject, "x")]),
                                                      rel=1e-4)
    for k, layer in enumerate(model.model.layers):
        merged = layer.self_attn.o_proj.weight.detach().double() + adapter.delta(targets[k]).double()
        for h in range(n_heads):
            columns = merged[:, h * head_dim:(h + 1) * head_dim]
            expected = float((columns @ z[k][h * head_dim:(h + 1) * head_dim]) @ readout)
            assert result.dla_parts.heads[k, h] == pytest.approx(expected, rel=1e-4, abs=1e-7)
