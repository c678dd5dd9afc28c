"""Oracles 8 and 9 of TESTING.md (patching, attribution patching) on every tiny family and on
the default model, plus causal tracing, the result object and its widget."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.patching import (
    SITES,
    PatchResult,
    _attribution,
    _patched_logits,
    _record,
    answer_token_ids,
    metric_values,
    projection_pre_hooks,
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
    n_cols = nm.analyses.patching.n_heads(tiny) if site == "heads" else len(CLEAN)
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


@torch.no_grad()
def test_head_patching_equals_a_hooked_hf_forward(tiny):
    """Head h of layer l: the clean run's slice of the output projection's input, swapped in
    during an ordinary HF forward of the corrupt prompt."""
    result = nm.patch(tiny, CLEAN, CORRUPT, ANSWERS, site="heads", metric="logprob", progress=False)
    answer_ids = answer_token_ids(tiny, ANSWERS)
    n = nm.analyses.patching.n_heads(tiny)
    donors: list[torch.Tensor] = []
    with projection_pre_hooks(tiny, range(tiny.n_layers), lambda step, block, x: donors.append(x.clone())):
        tiny.model(tiny.encode(CLEAN)["input_ids"], use_cache=False)
    corrupt_ids = tiny.encode(CORRUPT)["input_ids"]
    for layer, head in [(0, 0), (1, n - 1), (tiny.n_layers - 1, 1)]:
        def swap(step, block, x, layer=layer, head=head):
            if step != layer:
                return None
            x = x.clone().view(*x.shape[:-1], n, -1)
            x[..., head, :] = donors[layer].view(*x.shape)[..., head, :]
            return x.view(*x.shape[:-2], -1)

        with projection_pre_hooks(tiny, range(tiny.n_layers), swap):
            logits = tiny.model(corrupt_ids, use_cache=False).logits[:, -1]
        expected = metric_values(logits, answer_ids, "logprob").item()
        assert result.patched_metric[layer, head] == pytest.approx(expected, abs=1e-5)


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
def test_attribution_is_zero_when_clean_equals_corrupt(tiny, site):
    clean, _ = _sides(tiny, site)
    estimate = _attribution(tiny, clean, clean, site, answer_token_ids(tiny, ANSWERS), "logit_diff")
    assert np.all(estimate == 0)
    assert all(p.grad is None for p in tiny.model.parameters())


@pytest.mark.parametrize("site", SITES)
def test_attribution_matches_finite_differences(tiny, site):
    """Central differences in float64 (some families' norms compute in float32 inside, so the
    step cannot be tiny)."""
    tiny.model.double()
    answer_ids = answer_token_ids(tiny, ANSWERS)
    clean, corrupt = _sides(tiny, site)
    estimate = _attribution(tiny, corrupt, clean, site, answer_ids, "logprob")
    n = nm.analyses.patching.n_heads(tiny)

    def nudged_metric(step, col, scale):
        difference = clean.states[site][step] - corrupt.states[site][step]
        hooks, edits = contextlib.nullcontext(), []
        if site == "heads":
            def nudge(call, block, x):
                if call != step:
                    return None
                split = x.clone().view(*x.shape[:-1], n, -1)
                split[..., col, :] += scale * difference.view(*split.shape)[..., col, :]
                return split.view_as(x)

            hooks = projection_pre_hooks(tiny, tiny.program.steps, nudge)
        else:
            edits = [nm.Edit(step=step, site=site, op="add", value=scale * difference[:, col], positions=[col])]
        with hooks, torch.no_grad():
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
    assert -1 <= result.correlation <= 1 and "r=" in repr(result)
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
        if calls["n"] > 2 * tiny.n_layers + 3:  # after the two recording runs and a few steps
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
    ],
)
def test_bad_input_is_one_line_and_leaves_the_model_unchanged(tiny, kwargs, message):
    ids = tiny.encode(CLEAN)["input_ids"]
    reference = tiny.model(ids, use_cache=False).logits
    arguments = dict(clean=CLEAN, corrupt=CORRUPT, answers=list(ANSWERS)) | kwargs
    with pytest.raises(nm.NeuroMagicsError, match=message) as error:
        nm.patch(tiny, arguments.pop("clean"), arguments.pop("corrupt"), arguments.pop("answers"), progress=False,
                 **arguments)
    assert "\n" not in str(error.value)
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
