"""Oracle 10 of TESTING.md (steering) and ablation on every tiny family and the default model:
interventions compose with layer programs, install / reset exactly, and bad input changes nothing."""

from __future__ import annotations

import json

import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.interventions import REFERENCE_TEXT, contrast_vector
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.core.interventions import Hook, Intervention, active_interventions, register, reset_interventions

TEXT = "the cat sat on"


def _hook_counts(model) -> list[int]:
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]


@torch.no_grad()
def _logits(subject, text=TEXT):
    return subject.model(subject.encode(text)["input_ids"], use_cache=False).logits


@pytest.fixture
def clean_slate(tiny):
    """The tiny subject, with every intervention removed afterwards even if a test fails."""
    yield tiny
    reset_interventions(tiny)


# -- steering (oracle 10) -----------------------------------------------------------------------


def test_steering_with_coefficient_zero_is_a_no_op(clean_slate):
    tiny = clean_slate
    reference = _logits(tiny)
    nm.steer(tiny, pos="love", neg="hate", layer=1, coef=0.0)
    assert torch.equal(_logits(tiny), reference)


def test_steering_right_before_the_unembedding_shifts_logits_by_w_u_v(clean_slate, family):
    tiny = clean_slate
    if getattr(tiny.model.config, "final_logit_softcapping", None) is not None:
        pytest.skip("the oracle needs a head without softcap")
    head = tiny.adapter.unembedding_module(tiny.model)
    assert getattr(head, "bias", None) is None
    reference = _logits(tiny)
    vector = torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(3))
    nm.steer(tiny, vector=vector, layer=tiny.n_layers, coef=2.5)
    expected = reference + 2.5 * head.weight @ vector
    torch.testing.assert_close(_logits(tiny), expected, rtol=0, atol=1e-5)


@torch.no_grad()
def test_steering_a_block_acts_at_every_occurrence_in_hf_and_in_the_runner(clean_slate):
    tiny = clean_slate
    vector = torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(4))
    tiny.set_program([0, 1, 1, 2, 3])
    try:
        ids = tiny.encode(TEXT)["input_ids"]
        inputs = nm.prepare(tiny, ids)
        edits = [nm.Edit(step=k, site="resid_pre", op="add", value=3 * vector) for k in (1, 2)]
        by_edits = nm.run(tiny, inputs, edits=edits, logits_at="all").logits
        nm.steer(tiny, vector=vector, block=1, coef=3)
        by_hf = tiny.model(ids, use_cache=False).logits
        by_runner = nm.run(tiny, inputs, logits_at="all").logits
        torch.testing.assert_close(by_hf, by_edits, rtol=0, atol=1e-5)
        torch.testing.assert_close(by_runner, by_edits, rtol=0, atol=1e-5)
    finally:
        tiny.reset()


@torch.no_grad()
def test_the_contrast_vector_is_the_difference_of_last_token_states(clean_slate):
    tiny = clean_slate
    pairs = [("good day", "bad day"), ("yes", "no")]
    vector = contrast_vector(tiny, 2, pairs)
    states = []
    for text in [t for pair in pairs for t in pair]:
        ids = tiny.encode(CONTRAST_PREFIX + text)["input_ids"]
        out = nm.run(tiny, nm.prepare(tiny, ids), capture=nm.Capture(sites=("resid_pre",)))
        states.append(out.captures["resid_pre"][2, 0, -1])
    expected = ((states[0] - states[1]) + (states[2] - states[3])) / 2
    torch.testing.assert_close(vector, expected, rtol=0, atol=1e-5)


def test_steering_from_a_pairs_file_and_generation(clean_slate, tmp_path):
    tiny = clean_slate
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"positive": p, "negative": n}) for p, n in [("up", "down"), ("hot", "cold")]))
    before = tiny.generate(TEXT, max_new_tokens=4)
    expected = contrast_vector(tiny, 1, [("up", "down"), ("hot", "cold")])
    intervention = nm.steer(tiny, pairs=path, layer=1, coef=50)
    torch.testing.assert_close(intervention.vector, expected, rtol=0, atol=0)
    assert "mean difference of 2 pairs" in repr(intervention)
    assert tiny.generate(TEXT, max_new_tokens=4) != before
    reset_interventions(tiny, "steer")
    assert tiny.generate(TEXT, max_new_tokens=4) == before


# -- ablation ------------------------------------------------------------------------------------


@torch.no_grad()
def test_zero_ablating_a_layer_equals_zeroing_its_contributions_under_a_program(clean_slate):
    tiny = clean_slate
    tiny.set_program([0, 1, 2, 2, 3])
    try:
        ids = tiny.encode(TEXT)["input_ids"]
        inputs = nm.prepare(tiny, ids)
        edits = [nm.Edit(step=k, site=s, op="zero") for k in (2, 3) for s in ("attn_out", "mlp_out")]
        expected = nm.run(tiny, inputs, edits=edits, logits_at="all").logits
        nm.ablate(tiny, blocks="2")
        torch.testing.assert_close(tiny.model(ids, use_cache=False).logits, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(nm.run(tiny, inputs, logits_at="all").logits, expected, rtol=0, atol=1e-5)
    finally:
        tiny.reset()


@torch.no_grad()
def test_zero_ablating_every_head_of_a_layer_removes_its_attention(clean_slate, family):
    tiny = clean_slate
    projection = tiny.adapter.output_projection(tiny.blocks[1])
    if getattr(projection, "bias", None) is not None:
        pytest.skip("with an output-projection bias, zero heads still leave the bias")
    ids = tiny.encode(TEXT)["input_ids"]
    inputs = nm.prepare(tiny, ids)
    expected = nm.run(tiny, inputs, edits=[nm.Edit(step=1, site="attn_out", op="zero")], logits_at="all").logits
    nm.ablate(tiny, heads=",".join(f"1.{h}" for h in range(tiny.n_heads)))
    torch.testing.assert_close(tiny.model(ids, use_cache=False).logits, expected, rtol=0, atol=1e-5)


@torch.no_grad()
def test_ablating_one_head_zeroes_only_that_heads_slice(clean_slate):
    tiny = clean_slate
    seen = []  # a forward hook sees the input after every pre-hook, ours included
    handle = tiny.adapter.output_projection(tiny.blocks[2]).register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    try:
        _logits(tiny)
        nm.ablate(tiny, heads="2.1")
        _logits(tiny)
    finally:
        handle.remove()
    n = tiny.n_heads
    before, after = (x.view(*x.shape[:-1], n, -1) for x in seen)
    assert torch.all(after[..., 1, :] == 0) and not torch.all(before[..., 1, :] == 0)
    others = [h for h in range(n) if h != 1]
    assert torch.equal(after[..., others, :], before[..., others, :])


@torch.no_grad()
def test_mean_ablating_neurons_uses_the_mean_over_the_reference_text(clean_slate):
    tiny = clean_slate
    limit = tiny.model.config.max_position_embeddings if hasattr(tiny.model.config, "max_position_embeddings") else 128
    reference_ids = tiny.tokenizer(REFERENCE_TEXT, return_tensors="pt")["input_ids"][:, :limit]
    reference = nm.run(tiny, nm.prepare(tiny, reference_ids), capture=nm.Capture(sites=("neurons",)))
    mean = reference.captures["neurons"][1, 0].mean(0)
    nm.ablate(tiny, neurons="1:3,1:7", mode="mean")
    out = nm.run(tiny, nm.prepare(tiny, tiny.encode(TEXT)["input_ids"]), capture=nm.Capture(sites=("neurons",)))
    # The runner's capture is a pre-hook registered after ours: it sees the ablated input.
    neurons = out.captures["neurons"][1, 0]
    torch.testing.assert_close(neurons[:, 3], mean[3].expand(neurons.shape[0]), rtol=0, atol=1e-5)
    torch.testing.assert_close(neurons[:, 7], mean[7].expand(neurons.shape[0]), rtol=0, atol=1e-5)
    assert "mean over the reference text" in repr(active_interventions(tiny, "ablate")[0])


# -- registry, exact restore, bad input ---------------------------------------------------------


def test_registry_lists_resets_by_kind_and_restores_bit_identical(clean_slate):
    tiny = clean_slate
    reference = _logits(tiny)
    hooks = _hook_counts(tiny.model)
    nm.ablate(tiny, heads="0.1", neurons="2:5")
    nm.ablate(tiny, layers="3", mode="mean")
    nm.steer(tiny, pos="up", neg="down", layer=2, coef=4)
    assert [i.kind for i in active_interventions(tiny)] == ["ablate", "ablate", "steer"]
    assert not torch.equal(_logits(tiny), reference)
    assert reset_interventions(tiny, "ablate") == 2
    assert [i.kind for i in active_interventions(tiny)] == ["steer"]
    assert reset_interventions(tiny) == 1 and active_interventions(tiny) == []
    assert _hook_counts(tiny.model) == hooks
    assert torch.equal(_logits(tiny), reference)


def test_a_temporary_intervention_goes_away_after_an_exception(clean_slate):
    tiny = clean_slate
    reference = _logits(tiny)
    intervention = nm.ablate(tiny, layers="1", install=False)
    assert active_interventions(tiny) == [] and torch.equal(_logits(tiny), reference)
    with pytest.raises(KeyboardInterrupt):
        with intervention.applied(tiny):
            assert not torch.equal(_logits(tiny), reference)
            raise KeyboardInterrupt
    assert torch.equal(_logits(tiny), reference)


def test_a_failure_half_way_through_installing_removes_what_was_registered(clean_slate):
    tiny = clean_slate
    hooks = _hook_counts(tiny.model)
    good = Hook(tiny.blocks[0], "forward", lambda *args: None)
    broken = Hook(object(), "forward", lambda *args: None)  # not a module: registering fails
    with pytest.raises(AttributeError):
        register([good, broken])
    assert _hook_counts(tiny.model) == hooks
    with pytest.raises(nm.NeuroMagicsError, match="built for another model"):
        Intervention("ablate", "broken", {}, [good, broken]).install(tiny)
    assert _hook_counts(tiny.model) == hooks and active_interventions(tiny) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, p: nm.ablate(s, heads="1.9"), r"Head 1.9 is out of range: layers have heads 0-3"),
        (lambda s, p: nm.ablate(s, heads="9.1"), "block 9 is out of range"),
        (lambda s, p: nm.ablate(s, heads="1-2"), "Cannot read '1-2' as a head"),
        (lambda s, p: nm.ablate(s, layers="7"), "Block 7 is out of range"),
        (lambda s, p: nm.ablate(s, neurons="1:999"), "Neuron 1:999 is out of range"),
        (lambda s, p: nm.ablate(s), "Say what to ablate"),
        (lambda s, p: nm.ablate(s, layers="1", mode="half"), "Unknown ablation mode"),
        (lambda s, p: nm.steer(s, pairs=p, layer=1, coef=1), "holds no contrast pairs"),
        (lambda s, p: nm.steer(s, pairs=p.parent / "none.jsonl", layer=1, coef=1), "No file"),
        (lambda s, p: nm.steer(s, pos="a", layer=1, coef=1), "needs both --pos and --neg"),
        (lambda s, p: nm.steer(s, pos="a", neg="b", block=9, coef=1), "--block 9 is out of range"),
        (lambda s, p: nm.steer(s, layer=1, coef=1), "Give exactly one of"),
        (lambda s, p: nm.steer(s, vector=torch.zeros(3), layer=1, coef=1), "must have shape"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(clean_slate, tmp_path, call, message):
    tiny = clean_slate
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    reference, hooks = _logits(tiny), _hook_counts(tiny.model)
    with pytest.raises(nm.NeuroMagicsError, match=message) as error:
        call(tiny, empty)
    assert "\n" not in str(error.value)
    assert active_interventions(tiny) == [] and _hook_counts(tiny.model) == hooks
    assert tiny.program.is_identity and torch.equal(_logits(tiny), reference)


def test_a_malformed_pairs_line_names_its_line(clean_slate, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"positive": "a", "negative": "b"}\n{"positive": "c"}\n')
    with pytest.raises(nm.NeuroMagicsError, match=r"pairs.jsonl:2 is not a"):
        nm.steer(clean_slate, pairs=path, layer=1, coef=1)


# -- the default model ---------------------------------------------------------------------------


@pytest.mark.integration
@torch.no_grad()
def test_default_model_steering_oracles(default_subject):
    subject = default_subject
    reference = _logits(subject, "I think that")
    try:
        nm.steer(subject, pos="Love", neg="Hate", layer=6, coef=0)
        assert torch.equal(_logits(subject, "I think that"), reference)
        reset_interventions(subject)
        vector = torch.randn(subject.d_model, generator=torch.Generator().manual_seed(0))
        nm.steer(subject, vector=vector, layer=subject.n_layers, coef=1.5)
        head = subject.adapter.unembedding_module(subject.model)
        expected = reference + 1.5 * head.weight @ vector
        torch.testing.assert_close(_logits(subject, "I think that"), expected, rtol=0, atol=1e-4)
        reset_interventions(subject)
        nm.ablate(subject, heads="9.6,9.8", mode="mean")
        assert not torch.equal(_logits(subject, "I think that"), reference)
    finally:
        reset_interventions(subject)
    assert torch.equal(_logits(subject, "I think that"), reference)
