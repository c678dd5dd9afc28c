"""The Subject holds the whole state: layer program and interventions, recorded in every
result and replayed exactly; the user's tokenizer is never changed; model facts live on the
Subject; one lock serialises everything that runs or changes the model."""

from __future__ import annotations

import contextlib
import copy
import threading
import time

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.core.results import ReplayPlan
from tiny_models import CONFIGS, FAMILIES, tiny_model, tiny_tokenizer

TEXT = "the cat sat on"


def _hook_counts(model) -> list[int]:
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]


def _fresh(family: str = "llama") -> nm.Subject:
    """The same tiny model (same seed, same weights) as a new Subject."""
    return nm.Subject(tiny_model(family), tiny_tokenizer())


@torch.no_grad()
def _runner_logits(subject) -> torch.Tensor:
    ids = subject.encode(TEXT)["input_ids"]
    return nm.run(subject, nm.prepare(subject, ids), logits_at="all").logits


def _shape_state(subject) -> None:
    """A mean ablation built on the identity program, then a duplicated program, then a
    steering vector computed under both: replay must not recompute any of them."""
    nm.ablate(subject, heads="1.2", neurons="2:5,2:9", blocks="3", mode="mean")
    subject.set_program([0, 1, 2, 1, 2, 3])
    nm.steer(subject, pos="up", neg="down", block=2, coef=6)


# -- results say everything that shaped them -----------------------------------------------------


def test_a_scan_after_ablate_differs_and_its_metadata_says_why():
    subject = _fresh()
    plain = nm.scan(subject, TEXT, progress=False)
    plain_logits = _runner_logits(subject)
    nm.ablate(subject, blocks="2")
    ablated = nm.scan(subject, TEXT, progress=False)
    assert not np.array_equal(ablated.to_numpy(), plain.to_numpy())
    assert not torch.equal(_runner_logits(subject), plain_logits)
    assert plain.metadata["interventions"] == []
    assert ablated.metadata["interventions"] == [
        {"kind": "ablate", "description": "zero-ablate blocks 2",
         "arguments": {"heads": [], "layers": [2], "neurons": [], "mode": "zero", "reference_text": None,
                       "means": None}}]


def test_replay_on_a_fresh_subject_reproduces_the_numbers_bit_identically(tmp_path):
    original = _fresh()
    _shape_state(original)
    result = nm.scan(original, TEXT, progress=False)
    logits = _runner_logits(original)
    loaded = nm.load_result(result.save(tmp_path / "scan"))

    fresh = _fresh()
    reference = _runner_logits(fresh)
    plan = loaded.replay(fresh)
    assert isinstance(plan, ReplayPlan)
    assert fresh.program == original.program
    assert [i.spec for i in fresh.interventions] == [i.spec for i in original.interventions]
    assert torch.equal(_runner_logits(fresh), logits)
    np.testing.assert_array_equal(nm.scan(fresh, TEXT, progress=False).to_numpy(), result.to_numpy())
    torch.testing.assert_close(fresh.interventions[1].vector, original.interventions[1].vector, rtol=0, atol=0)

    nm.reset_interventions(fresh)
    fresh.reset()
    assert torch.equal(_runner_logits(fresh), reference)


def test_replay_replaces_whatever_state_the_subject_had():
    recorded = nm.scan(_fresh(), TEXT, progress=False)  # plain model, identity program
    subject = _fresh()
    reference = _runner_logits(subject)
    hooks = _hook_counts(subject.model)
    _shape_state(subject)
    recorded.replay(subject)
    assert subject.program.is_identity and subject.interventions == ()
    assert _hook_counts(subject.model) == hooks and torch.equal(_runner_logits(subject), reference)


def test_the_replay_plan_says_what_it_would_apply_without_applying():
    original = _fresh()
    _shape_state(original)
    plan = nm.scan(original, TEXT, progress=False).replay_plan()
    fresh = _fresh()
    assert plan.lines() == [
        "layer program: 0-2,1-3 (6 steps)",
        "1. ablate: mean-ablate heads 1.2; blocks 3; neurons 2:5,2:9 (mean over the reference text)",
        f"2. steer: {original.interventions[1].description}",
    ]
    assert repr(plan).startswith("Replay on LlamaForCausalLM (4 layers):\n  layer program: ")
    assert fresh.program.is_identity and fresh.interventions == ()


def test_replay_refuses_another_model_in_one_line_and_changes_nothing():
    original = _fresh()
    _shape_state(original)
    result = nm.scan(original, TEXT, progress=False)
    other = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="another-model")
    smaller = copy.deepcopy(CONFIGS["llama"]())
    smaller.num_hidden_layers = 2
    from transformers import AutoModelForCausalLM

    shallow = nm.Subject(AutoModelForCausalLM.from_config(smaller), tiny_tokenizer(), name=original.name)
    for subject, message in ((other, "not another-model"), (shallow, r"\(2 layers\)")):
        hooks = _hook_counts(subject.model)
        with pytest.raises(nm.NeuroMagicsError, match=message) as error:
            result.replay(subject)
        assert "\n" not in str(error.value)
        assert subject.program.is_identity and subject.interventions == () and _hook_counts(subject.model) == hooks


def test_a_failing_replay_puts_the_previous_state_back():
    original = _fresh()
    _shape_state(original)
    result = nm.scan(original, TEXT, progress=False)
    result.metadata["interventions"].append({"kind": "no-such-kind", "description": "?", "arguments": {}})
    subject = _fresh()
    nm.ablate(subject, heads="0.1")
    before, hooks = _runner_logits(subject), _hook_counts(subject.model)
    with pytest.raises(nm.NeuroMagicsError, match="no-such-kind"):
        result.replay(subject)
    assert [i.description for i in subject.interventions] == ["zero-ablate heads 0.1"]
    assert subject.program.is_identity and _hook_counts(subject.model) == hooks
    assert torch.equal(_runner_logits(subject), before)


def test_a_result_without_recorded_interventions_cannot_be_replayed():
    result = nm.scan(_fresh(), TEXT, progress=False)
    del result.metadata["interventions"]
    with pytest.raises(nm.NeuroMagicsError, match="does not record its interventions"):
        result.replay_plan()


def test_reset_leaves_no_hook_behind():
    subject = _fresh()
    hooks = _hook_counts(subject.model)
    _shape_state(subject)
    assert _hook_counts(subject.model) != hooks
    assert nm.reset_interventions(subject) == 2
    subject.reset()
    assert _hook_counts(subject.model) == hooks and subject.interventions == ()


def test_a_diff_records_the_interventions_of_its_after_side():
    subject = _fresh()
    steering = nm.steer(subject, pos="up", neg="down", block=1, coef=5, install=False)
    diff = nm.compare(subject, lambda: steering.applied(subject), ["the cat"], max_new_tokens=2)
    assert diff.metadata["interventions"] == [] and subject.interventions == ()
    assert diff.metadata["interventions_after"] == [steering.spec]


def test_the_subject_shows_its_program_and_interventions(shell):
    subject = _fresh()
    shell.neuro_magics_session.subject = subject
    assert "interventions  none" in repr(shell.run_line_magic("model", ""))
    subject.set_program([0, 1, 1, 2, 3])
    nm.ablate(subject, heads="1.2")
    nm.steer(subject, vector=torch.ones(subject.d_model), block=2, coef=0.5)
    text = repr(shell.run_line_magic("model", ""))
    assert "layer program  0-1,1-3 (5 steps)" in text
    assert "interventions  1. ablate: zero-ablate heads 1.2" in text
    assert "2. steer: add 0.5 x (a given vector) into block 2" in text
    html = subject._repr_html_()
    assert "1. ablate: zero-ablate heads 1.2" in html and "2. steer: add 0.5" in html


# -- the user's tokenizer is never changed ----------------------------------------------------------


def test_the_users_tokenizer_is_never_changed():
    tokenizer = tiny_tokenizer()
    tokenizer.pad_token = None
    tokenizer.padding_side = "right"
    subject = nm.Subject(tiny_model("llama"), tokenizer)
    encoded = subject.encode(["ab", "abcd"])
    subject.generate("the cat", max_new_tokens=2)
    nm.generate(subject, "the cat", max_new_tokens=2)
    nm.compare(subject, lambda: subject.program_applied([0, 1, 1, 2, 3]), ["a", "abc"], max_new_tokens=2)
    assert tokenizer.pad_token is None and tokenizer.padding_side == "right"
    # The batch equals HF's own left padding with the end-of-sequence token as pad (on a copy).
    reference = copy.deepcopy(tokenizer)
    reference.pad_token, reference.padding_side = reference.eos_token, "left"
    expected = reference(["ab", "abcd"], padding=True, return_tensors="pt")
    assert encoded.keys() == expected.keys()
    for key in expected:
        assert torch.equal(encoded[key], expected[key])


def test_left_padded_rows_are_right_aligned_after_the_pad_id_and_refused_over_the_context():
    """Rows of different lengths end at the last position, padding (the pad id, mask 0) before
    them, as a hand-built batch; a batch over the context (with room to generate) is refused in
    one line that says how long it is."""
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    rows = [[5, 6, 7], [9], [11, 12, 13, 14, 15]]
    pad = subject.pad_token_id
    input_ids, attention_mask = subject.left_padded(rows)
    assert input_ids.tolist() == [[pad, pad, 5, 6, 7], [pad, pad, pad, pad, 9], [11, 12, 13, 14, 15]]
    assert attention_mask.tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
    assert subject.context_length == 128
    subject.left_padded([[1] * 120], room=8)  # exactly the context
    with pytest.raises(nm.NeuroMagicsError) as error:
        subject.left_padded([[1] * 120, [2]], room=9, what="A probe prompt")
    assert str(error.value) == ("A probe prompt is 120 tokens and 9 more to generate; this model's context is 128 "
                                "tokens. Shorten it.")


def test_diff_models_refuses_texts_over_the_context_before_any_work():
    """A corpus text cut to --max-tokens that is still over the model's context is refused up front
    (its batches used to be padded by hand without the check), the model left as it was."""
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    before = [p.detach().clone() for p in subject.model.parameters()]
    with pytest.raises(nm.NeuroMagicsError, match="A corpus text is 150 tokens; this model's context is 128 tokens"):
        nm.diff_models(subject, "current", "0,1,1,2,3", corpus=[" a" * 149, "the cat"], max_tokens=150,
                       progress=False, probes=False)
    assert subject.program.is_identity and not subject.interventions
    assert all(torch.equal(p, q) for p, q in zip(subject.model.parameters(), before))


# -- model facts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_model_facts_come_from_the_config_and_tokenizer(family):
    subject = _fresh(family)
    config = CONFIGS[family]()
    heads = config.num_attention_heads
    assert subject.n_heads == heads == 4
    assert subject.n_kv_heads == (getattr(config, "num_key_value_heads", None) or heads)
    assert subject.head_dim == 8 and subject.context_length == 128
    assert subject.token_pieces([3 + ord("a") - 32, 3 + ord(" ") - 32]) == ["a", " "]
    assert subject.pad_token_id == 2  # the tiny tokenizer's "</s>"
    # The config's end token where it names one (gpt2: 50256), else the tokenizer's "</s>" (2).
    assert subject.eos_token_ids == [2 if config.eos_token_id is None else config.eos_token_id]


def test_head_dim_is_the_configs_where_it_is_not_d_model_over_heads():
    from transformers import AutoModelForCausalLM, Qwen3Config

    config = Qwen3Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64)
    subject = nm.Subject(AutoModelForCausalLM.from_config(config), tiny_tokenizer())
    projection = subject.blocks[0].self_attn.o_proj
    assert subject.head_dim == 16 == projection.in_features // subject.n_heads
    assert subject.context_length == 64


def test_pad_and_eos_fall_back_in_order():
    tokenizer = tiny_tokenizer()
    tokenizer.pad_token = None
    subject = nm.Subject(tiny_model("llama"), tokenizer)
    subject.model.generation_config.eos_token_id = [7, 9]
    assert subject.eos_token_ids == [7, 9]
    assert subject.pad_token_id == tokenizer.eos_token_id == 2
    subject.model.generation_config.eos_token_id = None
    assert subject.eos_token_ids == [2]


# -- one lock -----------------------------------------------------------------------------------------


def _race(subject, action, calls: int = 8) -> list[set[int]]:
    """Generate in a loop on this thread while ``action`` runs in a loop on another; return
    the depths each of this thread's generate calls ran at (one set per call)."""
    main = threading.get_ident()
    seen: list[set[int]] = []

    def record(module, args, kwargs):
        if threading.get_ident() == main:
            seen[-1].add(subject.model.config.num_hidden_layers)
            seen[-1].add(len(subject.adapter.block_list(subject.model)))

    done = threading.Event()
    failures: list[BaseException] = []
    actions = [0]

    def act():
        try:
            while not done.is_set():
                action()
                actions[0] += 1
                time.sleep(0.001)
        except BaseException as error:  # noqa: BLE001 (reported to the main thread)
            failures.append(error)

    handle = subject.blocks[0].register_forward_pre_hook(record, with_kwargs=True)
    worker = threading.Thread(target=act)
    worker.start()
    try:
        for _ in range(calls):
            seen.append(set())
            before = actions[0]
            subject.generate("the cat sat", max_new_tokens=6)
            deadline = time.monotonic() + 10
            while actions[0] == before and time.monotonic() < deadline and not failures:
                time.sleep(0.001)  # the action, waiting on the lock, gets in between calls
    finally:
        done.set()
        worker.join()
        handle.remove()
    assert not failures, failures
    return seen


def test_a_program_change_from_another_thread_never_lands_inside_a_generate_call():
    subject = _fresh()
    deep = nm.LayerProgram((0, 1, 2, 1, 2, 3, 3), 4)

    def toggle():
        subject.set_program(deep if subject.program.is_identity else nm.LayerProgram.identity(4))

    seen = _race(subject, toggle)
    assert all(len(depths) == 1 for depths in seen), seen
    assert {depth for depths in seen for depth in depths} == {4, 7}  # the action did run between calls
    subject.reset()


def test_duplicate_layers_from_another_thread_is_serialised_too():
    subject = _fresh()

    def toggle():
        if subject.program.is_identity:
            nm.duplicate_layers(subject, 1, 3, diff=False)
        else:
            nm.set_program(subject, "0-3", diff=False)

    seen = _race(subject, toggle)
    assert all(len(depths) == 1 for depths in seen), seen
    assert {depth for depths in seen for depth in depths} == {4, 6}
    subject.reset()


def test_the_lock_is_re_entrant_for_nested_engine_calls():
    subject = _fresh()
    with subject.program_applied([0, 1, 1, 2, 3]):
        with nm.ablate(subject, blocks="1", install=False).applied(subject):
            nm.generate(subject, "the cat", max_new_tokens=2)
            nm.compare(subject, lambda: subject.program_applied([0, 1, 2, 3]), ["a"], max_new_tokens=1)
    assert subject.program.is_identity and subject.interventions == ()


# -- a saved model cannot silently drop interventions -----------------------------------------------


def test_saving_a_model_or_a_mergekit_config_refuses_while_interventions_are_active(tmp_path, shell):
    subject = _fresh()
    shell.neuro_magics_session.subject = subject
    nm.steer(subject, vector=torch.ones(subject.d_model), block=1, coef=2)
    with pytest.raises(nm.NeuroMagicsError, match=r"leave out the active interventions \(steer: add 2 x") as error:
        nm.save_materialized(subject, tmp_path / "model")
    assert "\n" not in str(error.value) and "reset_interventions" in str(error.value)
    assert not (tmp_path / "model").exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="leave out the active interventions"):
        shell.run_line_magic("duplicate_layers", f"1:3 --no-diff --save {tmp_path / 'model'}")
    assert subject.program.is_identity and not (tmp_path / "model").exists()
    with pytest.raises(UsageError, match="leave out the active interventions"):
        shell.run_line_magic("duplicate_layers", f"1:3 --no-diff --mergekit {tmp_path / 'merge.yaml'}")
    assert subject.program.is_identity and not (tmp_path / "merge.yaml").exists()
    nm.reset_interventions(subject)
    assert nm.save_materialized(subject, tmp_path / "model").is_dir()


# -- the default model -------------------------------------------------------------------------------


@pytest.mark.integration
@torch.no_grad()
def test_default_model_state_round_trips_through_a_saved_result(default_subject, tmp_path):
    subject = default_subject
    ids = subject.encode("The capital of France is")["input_ids"]

    def logits():
        return subject.model(ids, use_cache=False).logits

    reference = logits()
    try:
        nm.ablate(subject, heads="9.6,9.8", mode="mean")
        subject.set_program(nm.LayerProgram.duplicate(subject.n_layers, 10, 16))
        nm.steer(subject, pos="Love", neg="Hate", block=6, coef=4)
        shaped = logits()
        assert not torch.equal(shaped, reference)
        result = nm.load_result(nm.compare(subject, lambda: contextlib.nullcontext(), ["Hi"], max_new_tokens=1)
                                .save(tmp_path / "diff"))
        nm.reset_interventions(subject)
        subject.reset()
        assert torch.equal(logits(), reference)
        result.replay(subject)
        assert torch.equal(logits(), shaped)
    finally:
        nm.reset_interventions(subject)
        subject.reset()
    assert torch.equal(logits(), reference)


def test_an_intervention_built_for_another_model_is_refused():
    subject, other = _fresh(), _fresh()
    ablation = nm.ablate(other, blocks="1", install=False)
    hooks = _hook_counts(other.model)
    with pytest.raises(nm.NeuroMagicsError, match="was built for another model"):
        ablation.install(subject)
    assert subject.interventions == () and _hook_counts(other.model) == hooks


# -- parked interventions are state the Subject holds ---------------------------------------------


def _hf_logits(subject) -> torch.Tensor:
    with torch.no_grad():
        return subject.model(subject.encode(TEXT)["input_ids"], use_cache=False).logits


def _lora_logits_by_hand(subject, adapter) -> torch.Tensor:
    """A deep copy of the (unadapted) Llama with alpha / rank x B A added to every target weight."""
    model = copy.deepcopy(subject.model)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in adapter.A:
            modules[f"model.layers.{name}"].weight += adapter.alpha / adapter.rank * adapter.B[name] @ adapter.A[name]
        return model(subject.encode(TEXT)["input_ids"], use_cache=False).logits


def test_a_parked_adapter_shows_in_model_and_metadata_and_reset_interventions_removes_it(shell):
    from test_finetune import random_adapter

    subject = _fresh()
    shell.neuro_magics_session.subject = subject
    base = _hf_logits(subject)
    adapter = random_adapter(subject)
    expected = _lora_logits_by_hand(subject, adapter)
    nm.load_adapter(subject, adapter.path)
    assert torch.allclose(_hf_logits(subject), expected, atol=1e-5) and not torch.allclose(expected, base, atol=1e-3)
    assert nm.adapters_off(subject) == 1
    assert torch.equal(_hf_logits(subject), base) and subject.interventions == ()
    text = repr(shell.run_line_magic("model", ""))
    assert "interventions  none" in text
    assert f"parked         1. lora: LoRA r=4 alpha=8 on 8 modules (q_proj,v_proj), 0 steps ({adapter.path.name}) " \
           "(off)" in text
    metadata = nm.scan(subject, TEXT, progress=False).metadata
    assert metadata["interventions"] == []
    assert metadata["parked"] == [{"kind": "lora", "description": adapter.describe(),
                                   "arguments": {"adapter": str(adapter.path), "sha256": adapter.sha256}}]
    nm.ablate(subject, blocks="2")
    assert nm.reset_interventions(subject) == 2  # the ablation and the parked adapter
    assert subject.parked == () and "parked" not in repr(shell.run_line_magic("model", ""))
    assert nm.adapters_on(subject) == 0  # nothing comes back
    assert torch.equal(_hf_logits(subject), base)


def test_replay_and_set_state_restore_a_parked_merged_adapter_as_it_was():
    from test_finetune import random_adapter

    subject = _fresh()
    adapter = random_adapter(subject)
    nm.load_adapter(subject, adapter.path)
    nm.merge_adapters(subject)
    merged = _hf_logits(subject)
    assert torch.allclose(merged, _lora_logits_by_hand(_fresh(), adapter), atol=1e-5)
    nm.adapters_off(subject)
    nm.ablate(subject, blocks="2")
    ablated = _hf_logits(subject)
    result = nm.scan(subject, TEXT, progress=False)

    fresh = _fresh()
    plan = result.replay(fresh)
    assert [i.spec for i in fresh.parked] == [i.spec for i in subject.parked]
    assert [i.kind for i in fresh.parked] == ["lora_merged"] and [i.kind for i in fresh.interventions] == ["ablate"]
    assert f"parked 1. lora_merged: merged {adapter.describe()} (off)" in repr(plan)
    assert torch.equal(_hf_logits(fresh), ablated)
    nm.reset_interventions(fresh, "ablate")
    assert nm.adapters_on(fresh) == 1 and [i.kind for i in fresh.interventions] == ["lora_merged"]
    assert torch.equal(_hf_logits(fresh), merged)

    state = subject.program, subject.interventions, subject.parked
    subject.set_state(nm.LayerProgram.identity(subject.n_layers), [], [])
    assert subject.parked == () and nm.adapters_on(subject) == 0
    subject.set_state(*state)
    assert subject.parked == state[2] and torch.equal(_hf_logits(subject), ablated)


# -- caches live on the Subject, behind a weight version ---------------------------------------------


def _reverse_rows(weight: torch.Tensor) -> None:
    """An in-place edit that keeps the tensor's sum (up to rounding) and changes what the model computes."""
    with torch.no_grad():
        weight.copy_(weight.flip(0))


def _copy_subject(subject) -> nm.Subject:
    """A new Subject (empty caches) of a deep copy of ``subject``'s model as it is now."""
    return nm.Subject(copy.deepcopy(subject.model), subject.tokenizer)


def test_a_sum_keeping_in_place_edit_then_touch_gives_fresh_numbers():
    from neuro_magics.analyses.editing import key_second_moment

    subject = _fresh()
    weight = subject.blocks[0].mlp.down_proj.weight
    before_moment = key_second_moment(subject, 2)
    before_diff = nm.compare(subject, contextlib.nullcontext, [TEXT], max_new_tokens=2).before
    total = float(weight.detach().sum())
    _reverse_rows(weight)
    assert float(weight.detach().sum()) == pytest.approx(total, rel=1e-5)
    oracle = _copy_subject(subject)
    fresh_moment = key_second_moment(oracle, 2)
    assert not torch.allclose(fresh_moment, before_moment, rtol=1e-3)
    assert torch.equal(key_second_moment(subject, 2), before_moment)  # not told: the cache cannot know
    version = subject.weight_version
    assert subject.touch() == subject.weight_version != version
    assert torch.allclose(key_second_moment(subject, 2), fresh_moment, rtol=1e-12, atol=0)

    after_diff = nm.compare(subject, contextlib.nullcontext, [TEXT], max_new_tokens=2).before
    probs = torch.softmax(_hf_logits(oracle)[0, -1].double(), -1)  # one prompt: no padding
    assert np.allclose(after_diff.topk_probs[0], probs[after_diff.topk_ids[0]].numpy(), atol=1e-6)
    assert not np.allclose(after_diff.topk_probs, before_diff.topk_probs, atol=1e-4)


def _reversing_intervention(weight: torch.Tensor):
    from neuro_magics.core.interventions import Intervention, WeightChange

    return Intervention("reverse", "reverse the rows of a weight", {}, hooks=[],
                        weights=WeightChange([weight], lambda: _reverse_rows(weight)))


def test_a_write_through_the_subject_invalidates_without_touch():
    from neuro_magics.analyses.editing import key_second_moment

    subject = _fresh()
    weight = subject.blocks[0].mlp.down_proj.weight
    before_moment = key_second_moment(subject, 2)
    reverse = _reversing_intervention(weight).install(subject)
    oracle = _copy_subject(subject)
    oracle.remove_interventions()  # the copy keeps the reversed weights but forgets the intervention
    fresh_moment = key_second_moment(oracle, 2)
    assert not torch.allclose(fresh_moment, before_moment, rtol=1e-3)
    assert torch.allclose(key_second_moment(subject, 2), fresh_moment, rtol=1e-12, atol=0)
    subject.remove_intervention(reverse)  # a bit-identical restore: the numbers before are right again
    assert subject.weight_version == 0
    assert torch.equal(key_second_moment(subject, 2), before_moment)


def test_the_weight_version_moves_with_every_write_and_comes_back_only_on_an_exact_undo():
    subject = _fresh()
    assert subject.weight_version == 0
    first = _reversing_intervention(subject.blocks[0].mlp.down_proj.weight).install(subject)
    after_first = subject.weight_version
    second = _reversing_intervention(subject.blocks[1].mlp.down_proj.weight).install(subject)
    after_second = subject.weight_version
    assert len({0, after_first, after_second}) == 3
    nm.ablate(subject, blocks="1")  # hooks only: no weight write
    assert subject.weight_version == after_second
    subject.remove_intervention(second)
    assert subject.weight_version == after_first
    subject.remove_intervention(first)
    assert subject.weight_version == 0
    first.install(subject)
    second.install(subject)
    subject.remove_intervention(first)  # the second is taken off and written again: a new state
    assert subject.weight_version not in (0, after_first, after_second)
    subject.remove_intervention(second)
    assert subject.weight_version != 0  # weights are the original, but by way of a state never numbered
    subject.remove_interventions()
    first.install(subject)
    touched = subject.touch()
    subject.remove_intervention(first)  # the user's edit may have been anything: never the old number
    assert subject.weight_version not in (0, touched)
    numbered = subject.weight_version
    nm.prune(subject, "magnitude", 0.5)  # the package's own writers go through the Subject
    assert subject.weight_version != numbered
    nm.reset_interventions(subject)
    assert subject.weight_version == numbered


def test_the_subject_cache_is_keyed_by_state_and_cleared_by_reset_and_release():
    subject = _fresh()
    calls = []

    def compute() -> int:
        calls.append(len(calls) + 1)
        return calls[-1]

    assert subject.cache("test", "k", compute) == 1 and subject.cache("test", "k", compute) == 1
    assert subject.cache("test", "other", compute) == 2 and subject.cache("other", "k", compute) == 3
    subject.set_program([0, 1, 1, 2, 3])
    assert subject.cache("test", "k", compute) == 4
    nm.ablate(subject, blocks="1")
    assert subject.cache("test", "k", compute) == 5
    nm.reset_interventions(subject)
    subject.set_program(range(subject.n_layers))
    assert subject.cache("test", "k", compute) == 1  # the same state again: the same entry
    assert subject.cache("test", "k", compute, model_state=False) == 6
    subject.touch()
    assert subject.cache("test", "k", compute, model_state=False) == 6 and subject.cache("test", "k", compute) == 7
    assert subject.cache("test", "new") is None and subject.cached("test") == 6
    subject.reset()
    assert subject.cached("test") == subject.cached("other") == 0
    assert subject.cache("test", "k", compute) == 8
    nm.compare(subject, contextlib.nullcontext, [TEXT], max_new_tokens=1)
    assert subject.cached("diffing.before_side") == 1
    subject.release()
    assert subject.cached("test") == subject.cached("diffing.before_side") == 0


def test_a_cache_keeps_its_most_recently_used_entries():
    subject = _fresh()
    for key in range(3):
        subject.cache("test", key, lambda key=key: key, entries=2)
    subject.cache("test", 1, lambda: "recomputed", entries=2)  # a hit: 1 becomes the most recent
    subject.cache("test", 3, lambda: 3, entries=2)
    assert subject.cache("test", 1) == 1 and subject.cache("test", 2) is None and subject.cache("test", 0) is None


# -- the attention implementation is switched by the Subject ---------------------------------------


def test_attention_implementation_switches_for_a_block_and_comes_back_after_an_error():
    subject = nm.Subject(tiny_model("llama", attn="sdpa"), tiny_tokenizer())
    ids = subject.encode(TEXT)["input_ids"]
    with pytest.raises(RuntimeError, match="inside"):
        with subject.attention_implementation("eager"):
            assert subject.model.config._attn_implementation == "eager"
            with torch.no_grad():
                attentions = subject.model(ids, output_attentions=True, use_cache=False).attentions
            assert attentions[0] is not None and attentions[0].shape[-2:] == (ids.shape[1], ids.shape[1])
            raise RuntimeError("inside")
    assert subject.model.config._attn_implementation == "sdpa"
    with pytest.raises(nm.NeuroMagicsError, match="No attention implementation 'fast'.*sdpa") as error:
        with subject.attention_implementation("fast"):
            pass
    assert "\n" not in str(error.value) and subject.model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("helper", ["text_perplexity", "key_second_moment", "optimise_value", "input_norms",
                                    "answer_set_scores", "block_influence", "logits_between",
                                    "teacher_forced_logprobs"])
def test_public_helpers_that_run_the_model_wait_for_its_lock(helper):
    """Each public helper that runs forwards holds the Subject's lock: while another thread holds
    it (a widget's click on a subshell thread), the helper waits instead of running beside it."""
    from neuro_magics.analyses import diffing, editing, pruning
    from neuro_magics.core import probe_sets, scoring

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    passages = ["the cat sat on the mat", "a dog ran far away"]
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    calls = {
        "text_perplexity": lambda: diffing.text_perplexity(subject, torch.tensor([[5, 6, 7, 8, 9]])),
        "key_second_moment": lambda: editing.key_second_moment(subject, 1),
        "optimise_value": lambda: editing.optimise_value(subject, 1, ["Ann lives in"], "Ann", " Rome", steps=1),
        "input_norms": lambda: pruning.input_norms(subject, dict(list(subject.block_matrices().items())[:1]),
                                                   passages),
        "answer_set_scores": lambda: pruning.answer_set_scores(subject),
        "block_influence": lambda: pruning.block_influence(subject, passages),
        "logits_between": lambda: scoring.logits_between(subject, ids, torch.ones_like(ids), 0, 3),
        "teacher_forced_logprobs": lambda: probe_sets.teacher_forced_logprobs(
            subject, probe_sets.teacher_forced_batch(subject, probe_sets.load_probe("facts"))),
    }
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (calls[helper](), finished.set()))
    with subject.lock:
        worker.start()
        time.sleep(1.0)
        assert not finished.is_set(), f"{helper} ran while another thread held the lock"
    worker.join(timeout=120)
    assert finished.is_set()
