"""Oracles 1-3 of TESTING.md on every supported family, plus the runner's edits."""

from __future__ import annotations

import pytest
import torch

import neuro_magics as nm
from neuro_magics.core.runner import SITES


def _hook_counts(model) -> list[int]:
    return [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(getattr(m, "_forward_hooks_with_kwargs", {}))
        for m in model.modules()
    ]


@torch.no_grad()
def test_runner_logits_bit_identical_to_hf(tiny, token_ids):
    reference = tiny.model(token_ids, use_cache=False).logits
    out = nm.run(tiny, nm.prepare(tiny, token_ids), logits_at="all", capture=nm.Capture(sites=SITES))
    assert torch.equal(out.logits, reference)


@torch.no_grad()
def test_left_padding_matches_hf_with_position_ids(tiny, token_ids):
    mask = torch.ones_like(token_ids)
    mask[0, :4] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    reference = tiny.model(token_ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
    out = nm.run(tiny, nm.prepare(tiny, token_ids, mask), logits_at="all")
    assert torch.equal(out.logits, reference)


@torch.no_grad()
def test_captured_block_outputs_equal_hf_hidden_states(tiny, token_ids):
    hidden = tiny.model(token_ids, use_cache=False, output_hidden_states=True).hidden_states
    out = nm.run(tiny, nm.prepare(tiny, token_ids), capture=nm.Capture(sites=("resid_pre", "resid_post")))
    resid_pre, resid_post = out.captures["resid_pre"], out.captures["resid_post"]
    assert resid_pre.shape == (tiny.n_layers, *token_ids.shape, tiny.d_model)
    torch.testing.assert_close(resid_pre[0], hidden[0], rtol=0, atol=0)
    # HF's last entry is already final-normed: compare block outputs except the last.
    for step in range(tiny.n_layers - 1):
        torch.testing.assert_close(resid_post[step], hidden[step + 1], rtol=0, atol=0)
        torch.testing.assert_close(resid_pre[step + 1], resid_post[step], rtol=0, atol=0)
    final_norm = tiny.adapter.final_norm_module(tiny.model)
    torch.testing.assert_close(final_norm(resid_post[-1]), hidden[-1], rtol=0, atol=0)


@torch.no_grad()
def test_logit_lens_on_last_block_equals_model_logits(tiny, token_ids):
    reference = tiny.model(token_ids, use_cache=False).logits
    out = nm.run(tiny, nm.prepare(tiny, token_ids), capture=nm.Capture(sites=("resid_post",)), logits_at=None)
    lens = nm.unembed(tiny, out.captures["resid_post"][-1], "all")
    torch.testing.assert_close(lens, reference, rtol=0, atol=0)


@torch.no_grad()
def test_contribution_sites_add_up_to_the_block(tiny, token_ids):
    out = nm.run(tiny, nm.prepare(tiny, token_ids), capture=nm.Capture(sites=SITES))
    c = out.captures
    assert c["neurons"].shape[:3] == (tiny.n_layers, *token_ids.shape)
    torch.testing.assert_close(c["resid_pre"] + c["attn_out"] + c["mlp_out"], c["resid_post"], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_captures_go_to_the_requested_dtype_and_positions(tiny, token_ids):
    capture = nm.Capture(sites=("resid_post",), steps=[1, 3], positions=[-1], dtype=torch.float16)
    out = nm.run(tiny, nm.prepare(tiny, token_ids), capture=capture)
    assert out.captured_steps == (1, 3)
    assert out.captures["resid_post"].shape == (2, token_ids.shape[0], 1, tiny.d_model)
    assert out.captures["resid_post"].dtype == torch.float16


@torch.no_grad()
def test_starting_mid_program_from_a_cached_state_equals_the_full_run(tiny, token_ids):
    inputs = nm.prepare(tiny, token_ids)
    full = nm.run(tiny, inputs, capture=nm.Capture(sites=("resid_pre",)), logits_at="all")
    resumed = nm.run(tiny, inputs, start=2, resid=full.captures["resid_pre"][2], logits_at="all")
    assert torch.equal(resumed.logits, full.logits)


@torch.no_grad()
def test_replacing_the_stream_with_another_prompts_state_gives_its_logits(tiny, token_ids):
    inputs = nm.prepare(tiny, token_ids)
    full = nm.run(tiny, inputs, capture=nm.Capture(sites=("resid_pre",)), logits_at="all")
    donor = full.captures["resid_pre"][1][1:2]  # row 1's state entering step 1
    edit = nm.Edit(step=1, site="resid_pre", op="replace", value=donor, rows=[0])
    patched = nm.run(tiny, inputs, edits=[edit], logits_at="all")
    torch.testing.assert_close(patched.logits[0], full.logits[1], rtol=1e-5, atol=1e-5)
    assert torch.equal(patched.logits[1], full.logits[1])


@torch.no_grad()
def test_an_edit_at_a_position_leaves_earlier_positions_untouched(tiny, token_ids):
    inputs = nm.prepare(tiny, token_ids)
    clean = nm.run(tiny, inputs, logits_at="all")
    noise = torch.randn(tiny.d_model)
    edit = nm.Edit(step=1, site="mlp_out", op="add", value=noise, positions=[5])
    edited = nm.run(tiny, inputs, edits=[edit], logits_at="all")
    assert torch.equal(edited.logits[:, :5], clean.logits[:, :5])
    assert not torch.allclose(edited.logits[:, 5:], clean.logits[:, 5:])


@torch.no_grad()
def test_zero_edit_of_every_contribution_leaves_only_the_embedding(tiny, token_ids):
    inputs = nm.prepare(tiny, token_ids)
    edits = [nm.Edit(step=k, site=s, op="zero") for k in range(tiny.n_layers) for s in ("attn_out", "mlp_out")]
    out = nm.run(tiny, inputs, edits=edits, logits_at=None)
    torch.testing.assert_close(out.resid, inputs.embeddings)


def test_hooks_are_gone_after_a_run_an_exception_and_an_interrupt(tiny, token_ids):
    before = _hook_counts(tiny.model)
    inputs = nm.prepare(tiny, token_ids)
    nm.run(tiny, inputs, capture=nm.Capture(sites=SITES))
    assert _hook_counts(tiny.model) == before

    bad = nm.Edit(step=2, site="attn_out", op="replace", value=torch.zeros(3, 3, 3))  # wrong shape
    with pytest.raises(RuntimeError):
        nm.run(tiny, inputs, edits=[bad], capture=nm.Capture(sites=SITES))
    assert _hook_counts(tiny.model) == before

    def interrupt(*_):
        raise KeyboardInterrupt

    mlp = tiny.adapter.submodule(tiny.blocks[2], tiny.adapter.mlp)
    handle = mlp.register_forward_hook(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            nm.run(tiny, inputs, capture=nm.Capture(sites=SITES))
    finally:
        handle.remove()
    assert _hook_counts(tiny.model) == before
    reference = tiny.model(token_ids, use_cache=False).logits
    assert torch.equal(nm.run(tiny, inputs, logits_at="all").logits, reference)


def test_prepare_restores_the_block_list_after_an_interrupt(tiny, token_ids):
    tiny.set_program([0, 1, 1, 2, 3])
    program_blocks = list(tiny.adapter.block_list(tiny.model))
    embedding = tiny.model.get_input_embeddings()
    handle = embedding.register_forward_hook(lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with pytest.raises(KeyboardInterrupt):
            nm.prepare(tiny, token_ids)
    finally:
        handle.remove()
    assert tiny.program.steps == (0, 1, 1, 2, 3)
    assert len(tiny.adapter.block_list(tiny.model)) == len(program_blocks)
    assert tiny.model.config.num_hidden_layers == 5


def test_bad_edits_and_ranges_are_one_line_errors(tiny, token_ids):
    with pytest.raises(nm.NeuroMagicsError, match="Unknown site"):
        nm.Edit(step=0, site="resid_mid")
    with pytest.raises(nm.NeuroMagicsError, match="needs a value"):
        nm.Edit(step=0, op="add")
    inputs = nm.prepare(tiny, token_ids)
    with pytest.raises(nm.NeuroMagicsError, match="outside"):
        nm.run(tiny, inputs, start=0, stop=99)
    with pytest.raises(nm.NeuroMagicsError, match="out of range"):
        nm.run(tiny, inputs, program=[0, 7])


@torch.no_grad()
def test_recorded_keys_values_equal_hf_cache_and_a_later_start_equals_the_full_run(tiny, token_ids):
    """The step cache reaches every block under the keyword the installed transformers takes
    (5.25 renamed past_key_values to cache and dropped the old name silently): each step's
    recorded keys and values equal HF's own cache, and a run from a later position on equals
    the full run there (patching's prefix reuse and DLA's value read rely on both)."""
    inputs = nm.prepare(tiny, token_ids)
    if any(args for args, _ in inputs.block_calls):  # blocks fed by position cannot take our cache
        with pytest.raises(nm.NeuroMagicsError, match="positional"):
            nm.run(tiny, inputs, record_keys_values=True)
        return
    hf = tiny.model(token_ids, use_cache=True)
    hf_cache = hf["cache"] if "cache" in hf else hf["past_key_values"]
    full = nm.run(tiny, inputs, record_keys_values=True, logits_at="all",
                  capture=nm.Capture(sites=("resid_pre",)))
    assert sorted(full.keys_values) == list(range(tiny.n_layers))
    for step, (keys, values) in full.keys_values.items():
        kept = hf_cache.layers[step].keys.shape[-2]  # a sliding-window layer's cache keeps only the window
        assert kept == token_ids.shape[1] or kept < (getattr(tiny.model.config, "sliding_window", None) or 0)
        torch.testing.assert_close(keys[..., -kept:, :], hf_cache.layers[step].keys, rtol=0, atol=0)
        torch.testing.assert_close(values[..., -kept:, :], hf_cache.layers[step].values, rtol=0, atol=0)
    first = 5
    later = nm.run(tiny, inputs, start=0, resid=inputs.embeddings[:, first:], logits_at="all",
                   from_position=first, keys_values=full.keys_values)
    torch.testing.assert_close(later.logits, full.logits[:, first:], rtol=1e-5, atol=1e-5)
