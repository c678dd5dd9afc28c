"""nm.scan against the oracles of TESTING.md on every family, the attention capture, the
result's data API, save/load and the widget payload; a few checks on the real default model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.core.attention_patterns import head_scores
from neuro_magics.analyses.scanning import ScanBatch, ScanResult
from tiny_models import FAMILIES, tiny_model, tiny_tokenizer

PROMPT = "abc abc xyz"


def _hook_counts(model) -> list[int]:
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]


def _ids(result: ScanResult) -> torch.Tensor:
    return torch.as_tensor(result.token_ids)[None]


def payload_bytes(widget) -> int:
    """Bytes a widget sends to the front end: its JSON state plus binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    return len(json.dumps(state)) + sum(memoryview(b).nbytes for b in buffers)


# -- oracles on every family ------------------------------------------------------------


@torch.no_grad()
def test_lens_on_the_last_step_is_the_model_output(tiny):
    result = nm.scan(tiny, PROMPT, lens=True, top_k=3)
    logits = tiny.model(_ids(result), use_cache=False).logits[0]
    probs = logits.softmax(-1)
    last = result.steps.index(len(tiny.program) - 1)
    assert np.array_equal(result.top_ids[last, :, 0], logits.argmax(-1).numpy())
    # Default target: the model's own final prediction at each position.
    assert np.array_equal(result.target_ids, logits.argmax(-1).numpy())
    np.testing.assert_allclose(result.metric("target_prob")[last], probs.max(-1).values.numpy(), atol=1e-6)
    np.testing.assert_allclose(result.top_probs[last], probs.topk(3, -1).values.numpy(), atol=1e-6)
    np.testing.assert_array_equal(result.metric("target_rank")[last], 1.0)
    entropy = -(probs * probs.log()).sum(-1)
    np.testing.assert_allclose(result.metric("entropy")[last], entropy.numpy(), atol=1e-5)


@torch.no_grad()
def test_captures_equal_hf_hidden_states(tiny):
    result = nm.scan(tiny, PROMPT, sites="resid,attn,mlp,neurons")
    hidden = tiny.model(_ids(result), use_cache=False, output_hidden_states=True).hidden_states
    pre, post = result.to_numpy("resid_pre"), result.to_numpy("resid")
    assert pre.shape == (tiny.n_layers, len(result.tokens), tiny.d_model)
    np.testing.assert_array_equal(pre[0], hidden[0][0].numpy())
    for step in range(tiny.n_layers - 1):  # HF's last entry is final-normed
        np.testing.assert_array_equal(post[step], hidden[step + 1][0].numpy())
    np.testing.assert_allclose(pre + result.to_numpy("attn") + result.to_numpy("mlp"), post, atol=1e-5)
    assert result.to_numpy("neurons").shape[:2] == pre.shape[:2]
    np.testing.assert_allclose(result.metric("norm"), np.linalg.norm(post, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(result.metric("cos_final")[-1], 1.0, atol=1e-5)
    assert result.metric("cos_final").max() <= 1.0  # no 1.0000001: a cosine is clamped to [-1, 1]
    cos = (pre * post).sum(-1) / np.linalg.norm(pre, axis=-1) / np.linalg.norm(post, axis=-1)
    np.testing.assert_allclose(result.metric("block_influence"), 1 - cos, atol=1e-5)
    np.testing.assert_allclose(result.metric("angular_distance"), np.arccos(np.clip(cos, -1, 1)) / np.pi, atol=1e-4)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "gemma2"])  # gemma2 has no SDPA in HF
@torch.no_grad()
def test_attention_patterns_equal_hf_eager_and_sdpa_comes_back(family, token_ids):
    model = tiny_model(family, attn="sdpa")
    subject = nm.Subject(model, tiny_tokenizer())
    before = model(token_ids, use_cache=False).logits
    result = nm.scan(subject, PROMPT, attention=True)
    assert model.config._attn_implementation == "sdpa"
    assert torch.equal(model(token_ids, use_cache=False).logits, before)
    assert sum(_hook_counts(model)) == 0
    reference = tiny_model(family, attn="eager")(_ids(result), use_cache=False, output_attentions=True).attentions
    np.testing.assert_array_equal(result.to_numpy("attention"), torch.stack(reference)[:, 0].numpy())
    assert set(result.scores) == {"entropy", "previous_token", "duplicate_token", "induction", "first_token"}


def test_gemma2_attention_comes_from_self_attn_not_the_post_norm():
    subject = nm.Subject(tiny_model("gemma2"), tiny_tokenizer())
    result = nm.scan(subject, PROMPT, attention=True)
    reference = subject.model(_ids(result), use_cache=False, output_attentions=True).attentions
    np.testing.assert_array_equal(result.attention, torch.stack(reference)[:, 0].detach().numpy())


# -- the model is left exactly as it was ------------------------------------------------


class _Boom(Exception):
    pass


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
@torch.no_grad()
def test_hooks_and_attention_implementation_restored_after_an_error(error, token_ids):
    model = tiny_model("llama", attn="sdpa")
    subject = nm.Subject(model, tiny_tokenizer())
    subject.set_program(nm.LayerProgram.duplicate(4, 1, 3))
    before = model(token_ids, use_cache=False).logits

    def explode(module, args, output):
        raise error()

    handle = subject.blocks[2].mlp.register_forward_hook(explode)  # fires mid-run, hooks in place
    with pytest.raises(error):
        nm.scan(subject, PROMPT, sites="resid,attn,mlp,neurons", attention=True, lens=True)
    handle.remove()
    assert sum(_hook_counts(model)) == 0
    assert model.config._attn_implementation == "sdpa"
    assert subject.program == nm.LayerProgram.duplicate(4, 1, 3)
    assert torch.equal(model(token_ids, use_cache=False).logits, before)


def test_an_interrupt_during_the_lens_leaves_the_model_alone(monkeypatch, token_ids):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    before = subject.model(token_ids, use_cache=False).logits

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("neuro_magics.analyses.scanning._lens_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nm.scan(subject, PROMPT, lens=True, attention=True)
    assert sum(_hook_counts(subject.model)) == 0
    assert torch.equal(subject.model(token_ids, use_cache=False).logits, before)


# -- programs, layer selection, batches -------------------------------------------------


@torch.no_grad()
def test_scan_follows_the_layer_program():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    program = nm.LayerProgram.duplicate(4, 1, 3)  # 0,1,2,1,2,3
    with subject.program_applied(program):
        result = nm.scan(subject, PROMPT, lens=True, attention=True)
        logits = subject.model(_ids(result), use_cache=False).logits[0]
    assert result.steps == list(range(6)) and result.blocks == [0, 1, 2, 1, 2, 3]
    assert result.row_labels[3] == "3 (block 1)"
    assert result.attention.shape[0] == 6
    assert np.array_equal(result.top_ids[-1, :, 0], logits.argmax(-1).numpy())
    assert subject.program.is_identity


def test_steps_keeps_only_those_steps_with_the_same_numbers():
    subject = nm.Subject(tiny_model("qwen2"), tiny_tokenizer())
    full = nm.scan(subject, PROMPT, lens=True, attention=True)
    part = nm.scan(subject, PROMPT, lens=True, attention=True, steps="1-2")
    assert part.steps == [1, 2] and part.row_labels == ["1", "2"]
    np.testing.assert_array_equal(part.metrics, full.metrics[:, 1:3])
    np.testing.assert_array_equal(part.attention, full.attention[1:3])
    assert nm.scan(subject, PROMPT, layers="0:2").steps == [0, 1]


def test_target_token_is_followed_at_every_position():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    result = nm.scan(subject, PROMPT, target="x")
    target = subject.tokenizer.convert_tokens_to_ids("x")
    assert result.has_lens and result.target == "x"
    assert set(result.target_ids.tolist()) == {target}
    with torch.no_grad():
        probs = subject.model(_ids(result), use_cache=False).logits[0].softmax(-1)
    np.testing.assert_allclose(result.metric("target_prob")[-1], probs[:, target].numpy(), atol=1e-6)
    ranks = (probs > probs[:, target : target + 1]).sum(-1) + 1
    np.testing.assert_array_equal(result.metric("target_rank")[-1], ranks.numpy())


def test_a_batch_matches_separate_scans():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    prompts = ["hello there", "hi"]
    batch = nm.scan(subject, prompts, lens=True, attention=True)
    assert isinstance(batch, ScanBatch) and len(batch) == 2
    for prompt, scanned in zip(prompts, batch):
        alone = nm.scan(subject, prompt, lens=True, attention=True)
        assert scanned.tokens == alone.tokens
        np.testing.assert_allclose(scanned.metrics, alone.metrics, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scanned.attention, alone.attention, atol=1e-5)
        np.testing.assert_array_equal(scanned.top_ids[..., 0], alone.top_ids[..., 0])
    stacked = batch.to_numpy("resid")
    assert stacked.shape == (2, 4, len("hello there"), subject.d_model)
    assert np.isnan(stacked[1, :, :-2]).all() and not np.isnan(stacked[1, :, -2:]).any()
    frame = batch.to_pandas()
    assert set(frame["prompt"]) == {0, 1} and len(frame) == 4 * (len("hello there") + 2)


# -- head scores ------------------------------------------------------------------------


def test_head_scores_recognise_textbook_heads():
    tokens = np.array([5, 6, 7, 5, 6, 7])  # a repeated sequence
    n = len(tokens)
    previous = np.zeros((n, n), np.float32)
    previous[0, 0] = 1
    previous[np.arange(1, n), np.arange(n - 1)] = 1
    induction = np.eye(n, dtype=np.float32)
    induction[3:] = 0
    induction[[3, 4, 5], [1, 2, 3]] = 1  # each second-half token looks at what followed its first copy
    first = np.zeros((n, n), np.float32)
    first[:, 0] = 1
    scores = head_scores(np.stack([previous, induction, first])[None], tokens)
    np.testing.assert_allclose(scores["previous_token"][0], [1, 0, 0.2])
    np.testing.assert_allclose(scores["induction"][0], [0, 1, 0])
    np.testing.assert_allclose(scores["first_token"][0], [0.2, 0, 1])
    np.testing.assert_allclose(scores["entropy"][0], 0, atol=1e-6)
    no_repeats = head_scores(previous[None, None], np.arange(n))
    assert np.isnan(no_repeats["induction"]).all() and np.isnan(no_repeats["duplicate_token"]).all()


# -- the result as data -----------------------------------------------------------------


def test_save_load_pandas_figure_and_selection(tmp_path):
    subject = nm.Subject(tiny_model("gpt2"), tiny_tokenizer())
    result = nm.scan(subject, "ab cd", lens=True, attention=True, sites="resid,neurons")
    assert set(result.captures) == {"resid_pre", "resid_post", "neurons"}
    loaded = nm.load_result(result.save(tmp_path / "scan"))
    assert isinstance(loaded, ScanResult) and loaded.tokens == ["a", "b", " ", "c", "d"]
    for name in ("metrics", "top_ids", "top_probs", "target_ids", "attention", "token_ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    np.testing.assert_array_equal(loaded.to_numpy("neurons"), result.to_numpy("neurons"))
    assert loaded.vocab == result.vocab and loaded.scores.keys() == result.scores.keys()
    assert loaded.metadata["model"] == result.metadata["model"] and loaded.metadata["program"] == [0, 1, 2, 3]
    assert {"torch", "transformers", "neuro_magics"} <= set(loaded.metadata["versions"])

    frame = loaded.to_pandas()
    assert len(frame) == 4 * 5
    row = frame[(frame.step == 3) & (frame.position == 2)].iloc[0]
    assert row.token == " " and row.top_token == loaded.top_tokens(3, 2)[0][0]
    assert row.entropy == loaded.metric("entropy")[3, 2]
    assert loaded.layer_summary()["block_influence"].tolist() == pytest.approx(
        loaded.metric("block_influence").mean(1).tolist())

    figure = loaded.figure("entropy")
    np.testing.assert_array_equal(np.asarray(figure.data[0].z), loaded.metric("entropy"))
    assert list(figure.layout.xaxis.ticktext) == ["a", "b", "␣", "c", "d"]

    view = loaded.widget()
    heatmap, attention = view.children
    assert heatmap.metric == "target_prob" and heatmap.col_labels == loaded.tokens
    assert attention.patterns.dtype == np.float16 and attention.head_grid == (4, 4)
    heatmap.selected = [1, 2]
    assert loaded.selected == {"step": 1, "block": 1, "position": 2, "token": " "}
    attention.selected = [2, 3]
    assert loaded.selected_head == {"step": 2, "head": 3}
    assert "ScanResult" in repr(loaded) and "application/vnd.jupyter.widget-view+json" in loaded._repr_mimebundle_()

    with pytest.raises(nm.NeuroMagicsError, match="no 'mlp'"):
        loaded.to_numpy("mlp")


def test_batch_save_load_roundtrip(tmp_path):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    batch = nm.scan(subject, ["one", "three"], lens=True)
    loaded = nm.load_result(batch.save(tmp_path / "batch.npz"))
    assert isinstance(loaded, ScanBatch) and [s.prompt for s in loaded] == ["one", "three"]
    np.testing.assert_array_equal(loaded.to_numpy(), batch.to_numpy())
    assert len(loaded.widget().children) == 2 and len(loaded.figure("entropy").data) == 2


def test_widget_payload_for_30_layers_by_512_tokens_is_under_2_mb():
    """A realistic lens scan of the default model's shape (vocab 49152, top-5)."""
    rng = np.random.default_rng(0)
    steps, tokens, k = 30, 512, 5
    metric_names = ["target_prob", "target_rank", "entropy", "norm", "cos_final", "block_influence", "angular_distance"]
    top_ids = rng.integers(0, 49152, (steps, tokens, k))
    result = ScanResult(
        prompt="x" * tokens, tokens=[f" tok{i}" for i in range(tokens)], token_ids=np.arange(tokens),
        steps=list(range(steps)), blocks=list(range(steps)), metric_names=metric_names,
        metrics=rng.random((len(metric_names), steps, tokens)), captures={}, metadata={"program": list(range(steps))},
        target=None, target_ids=top_ids[-1, :, 0], top_ids=top_ids, top_probs=rng.random((steps, tokens, k)),
        vocab={int(i): f" w{i}" for i in np.unique(top_ids)},
    )
    size = payload_bytes(result.widget())
    assert 500_000 < size < 2 * 2**20, size


# -- the real default model -------------------------------------------------------------


@pytest.mark.integration
@torch.no_grad()
def test_default_model_lens_and_attention(default_subject):
    model = default_subject.model
    implementation = model.config._attn_implementation
    encoded = default_subject.encode("The capital of France is")
    before = model(**encoded, use_cache=False).logits
    # The session's shared model may carry HF's own lazily installed output-capture hooks.
    hooks_before = _hook_counts(model)
    result = nm.scan(default_subject, "The capital of France is", target=" Paris", attention=True)
    assert result.tokens == ["The", " capital", " of", " France", " is"]
    probs = before[0, -1].softmax(-1)
    paris = default_subject.tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    assert result.top_tokens(29, 4)[0][0] == " Paris"
    # Eager attention in the scan vs the model's SDPA: equal up to float rounding.
    assert result.metric("target_prob")[-1, -1] == pytest.approx(probs[paris].item(), abs=1e-4)
    assert result.metric("target_prob")[0, -1] < 1e-6  # nowhere near at the first block
    assert result.attention.shape == (30, 9, 5, 5) and result.n_kv_heads == 3
    np.testing.assert_allclose(result.attention.sum(-1), 1, atol=1e-5)
    assert model.config._attn_implementation == implementation
    assert torch.equal(model(**encoded, use_cache=False).logits, before)
    assert _hook_counts(model) == hooks_before


@pytest.mark.parametrize("asked", ["entropy,target_rank", ["target_prob"], []])
def test_the_lens_computes_only_the_metrics_asked_for(asked):
    """Oracle: each lens metric of every step from HF's hidden states read through the final norm
    and unembedding by the test (float64): target probability, rank (1 + logits above the
    target's) and entropy of the model's own final prediction at each position. Only the metrics
    asked for are in the result, in the lens order, with the stream metrics after them; the
    top-k is there whatever is asked (fails with a metric computed under another's name, or the
    rank counted from 0)."""
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    result = nm.scan(subject, PROMPT, lens=True, lens_metrics=asked, top_k=3)
    names = asked.split(",") if isinstance(asked, str) else asked
    expected_names = [n for n in ("target_prob", "target_rank", "entropy") if n in names]
    assert result.metric_names[:len(expected_names)] == expected_names
    assert result.metric_names[len(expected_names):] == ["norm", "cos_final", "block_influence", "angular_distance"]
    with torch.no_grad():
        hidden = subject.model(_ids(result), output_hidden_states=True, use_cache=False).hidden_states
        logits = subject.model.lm_head(subject.model.model.norm(torch.stack(hidden[1:-1]))).double()[:, 0]
        final = subject.model.lm_head(hidden[-1]).double()[0]  # HF's last entry is already normed
    logits = torch.cat([logits, final[None]])
    target = final.argmax(-1)
    logprobs = logits.log_softmax(-1)
    own = logprobs.gather(-1, target[None, :, None].expand(len(logits), -1, 1))[..., 0]
    hand = {"target_prob": own.exp(),
            "target_rank": (logits > logits.gather(-1, target[None, :, None].expand(len(logits), -1, 1))).sum(-1) + 1,
            "entropy": -(logprobs.exp() * logprobs).sum(-1)}
    for name in expected_names:
        np.testing.assert_allclose(result.metric(name), hand[name].numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(result.top_ids[:, :, 0], logits.argmax(-1).numpy())
    with pytest.raises(nm.NeuroMagicsError, match="Unknown lens metric 'rank': use any of target_prob"):
        nm.scan(subject, PROMPT, lens=True, lens_metrics="rank")
