"""Layer surgery (nm.duplicate_layers / drop_layers / set_program / save_materialized /
mergekit_yaml): oracles 4-7 of TESTING.md on every family and on the default model."""

from __future__ import annotations

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

import neuro_magics as nm
from neuro_magics.analyses import surgery
from neuro_magics.analyses.generation import generate


def _logits(subject, token_ids):
    with torch.no_grad():
        return subject.model(token_ids, use_cache=False).logits


def _pointers(subject):
    return sorted(p.data_ptr() for p in subject.model.parameters())


def test_duplicate_after_drop_indexes_positions_of_the_current_program(tiny):
    surgery.drop_layers(tiny, "0", diff=False)
    assert tiny.program.steps == (1, 2, 3)
    # positions 0:2 of (1, 2, 3) are blocks 1, 2
    program = surgery.duplicate_layers(tiny, 0, 2, diff=False)
    assert program.steps == (1, 2, 1, 2, 3) and tiny.program == program
    surgery.drop_layers(tiny, [4], diff=False)
    assert tiny.program.steps == (1, 2, 1, 2)
    assert surgery.duplicate_layers(tiny, 1, 3, times=2, diff=False).steps == (1, 2, 1, 2, 1, 2, 1, 2)
    assert surgery.set_program(tiny, "0-1,1:4", diff=False).steps == (0, 1, 1, 2, 3)


def test_rys_on_the_original_model_matches_layer_program_duplicate(tiny):
    for start, end, times in ((1, 3, 1), (0, 4, 2), (2, 3, 3)):
        tiny.reset()
        program = surgery.duplicate_layers(tiny, start, end, times, diff=False)
        assert program == nm.LayerProgram.duplicate(tiny.n_layers, start, end, times)


@torch.no_grad()
def test_identity_and_reset_are_bit_identical(tiny, token_ids):
    reference = _logits(tiny, token_ids)
    surgery.set_program(tiny, list(range(tiny.n_layers)), diff=False)
    assert torch.equal(_logits(tiny, token_ids), reference)
    surgery.drop_layers(tiny, "1", diff=False)
    surgery.duplicate_layers(tiny, 0, 2, diff=False)
    changed = _logits(tiny, token_ids)
    assert not torch.allclose(changed, reference)  # the duplicated block really runs
    tiny.reset()
    assert torch.equal(_logits(tiny, token_ids), reference)


def test_composed_changes_are_zero_copy(tiny):
    pointers = _pointers(tiny)
    count = sum(p.numel() for p in tiny.model.parameters())
    surgery.duplicate_layers(tiny, 1, 3, times=3, diff=False)
    assert len(tiny.program) == tiny.n_layers + 6
    assert _pointers(tiny) == pointers
    assert sum(p.numel() for p in tiny.model.parameters()) == count
    # a dropped block is no longer run, so the model reaches fewer parameters; none is new
    surgery.drop_layers(tiny, "0", diff=False)
    assert 0 not in tiny.program.steps
    assert set(_pointers(tiny)) < set(pointers)
    block_0 = sum(p.numel() for p in tiny.blocks[0].parameters())
    assert sum(p.numel() for p in tiny.model.parameters()) == count - block_0


@torch.no_grad()
def test_saved_materialized_model_reproduces_the_logits(tiny, token_ids, tmp_path):
    surgery.drop_layers(tiny, "3", diff=False)
    surgery.duplicate_layers(tiny, 0, 2, diff=False)  # (0, 1, 0, 1, 2): reordering and repetition
    expected = _logits(tiny, token_ids)
    folder = surgery.save_materialized(tiny, tmp_path / "materialized")
    loaded = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    assert loaded.config.num_hidden_layers == 5
    torch.testing.assert_close(loaded(token_ids, use_cache=False).logits, expected, rtol=0, atol=1e-5)
    # the copy is a real one: its blocks own their parameters, and the subject is untouched
    assert sum(p.numel() for p in loaded.parameters()) > sum(p.numel() for p in tiny.model.parameters())
    assert tiny.program.steps == (0, 1, 0, 1, 2)
    assert torch.equal(_logits(tiny, token_ids), expected)
    # cached generation of the saved model equals the zero-copy program's
    prompt = token_ids[:1]
    ours = tiny.model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    theirs = loaded.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert torch.equal(ours, theirs)


def test_greedy_generate_is_kv_cache_correct_under_a_composed_program(tiny):
    surgery.duplicate_layers(tiny, 1, 3, diff=False)
    surgery.drop_layers(tiny, "5", diff=False)
    tiny.model.generation_config.eos_token_id = None  # run all steps on the random model
    result = generate(tiny, "hello there", max_new_tokens=8)
    sequence = tiny.encode("hello there")["input_ids"]
    with torch.no_grad():
        for _ in range(8):
            next_token = tiny.model(sequence, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, next_token], dim=1)
    assert result.n_new_tokens == 8
    assert result == tiny.tokenizer.decode(sequence[0, -8:], skip_special_tokens=True)
    assert result.program == str(tiny.program)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: surgery.duplicate_layers(s, 3, 3, diff=False), "I < J"),
        (lambda s: surgery.duplicate_layers(s, 2, 1, diff=False), "I < J"),
        (lambda s: surgery.duplicate_layers(s, 0, 9, diff=False), "J <= 6"),
        (lambda s: surgery.duplicate_layers(s, 1, 2, times=0, diff=False), "at least 1"),
        (lambda s: surgery.duplicate_layers(s, 0, 6, times=8, diff=False), "over the limit"),
        (lambda s: surgery.drop_layers(s, "0:6", diff=False), "every block"),
        (lambda s: surgery.drop_layers(s, "7", diff=False), "out of range"),
        (lambda s: surgery.drop_layers(s, "1,,2", diff=False), "Cannot read"),
        (lambda s: surgery.drop_layers(s, "", diff=False), "Empty position list"),
        (lambda s: surgery.set_program(s, "", diff=False), "Empty"),
        (lambda s: surgery.set_program(s, "0-3,x", diff=False), "Cannot read"),
        (lambda s: surgery.set_program(s, "0-9", diff=False), "blocks 0-3"),
        (lambda s: surgery.set_program(s, [], diff=False), "at least one"),
        (lambda s: surgery.set_program(s, list(range(4)) * 9, diff=False), "limit"),
        (lambda s: surgery.set_program(s, nm.LayerProgram.identity(5), diff=False), "5-layer"),
    ],
)
@torch.no_grad()
def test_bad_input_is_one_line_and_changes_nothing(change, message, token_ids):
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    surgery.duplicate_layers(subject, 1, 3, diff=False)  # a 6-step program to start from
    before_program, before_logits = subject.program, _logits(subject, token_ids)
    with pytest.raises(nm.NeuroMagicsError, match=message) as info:
        change(subject)
    assert "\n" not in str(info.value)
    assert subject.program == before_program
    assert torch.equal(_logits(subject, token_ids), before_logits)


def test_parse_span_and_positions():
    assert surgery.parse_span("8:16", 30) == (8, 16)
    assert surgery.parse_span("8-15", 30) == (8, 16)  # inclusive spelling of the same block
    assert surgery.parse_positions("3,5,20:24,4-5", 30) == [3, 4, 5, 20, 21, 22, 23]
    for bad in ("8", "8:", "a:b", "16:8", "0:31"):
        with pytest.raises(nm.NeuroMagicsError):
            surgery.parse_span(bad, 30)


def test_mergekit_yaml_rebuilds_the_program():
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="org/tiny-llama")
    program = nm.LayerProgram((0, 1, 2, 1, 2, 3, 3), 4)
    config = yaml.safe_load(surgery.mergekit_yaml(subject, program, model="org/tiny-llama"))
    assert config["merge_method"] == "passthrough" and config["dtype"] == "float32"
    steps = []
    for piece in config["slices"]:
        (source,) = piece["sources"]
        assert source["model"] == "org/tiny-llama"
        steps.extend(range(*source["layer_range"]))  # mergekit's layer_range is half-open
    assert tuple(steps) == program.steps
    assert [s["sources"][0]["layer_range"] for s in config["slices"]] == [[0, 3], [1, 4], [3, 4]]


def test_save_refuses_a_non_empty_folder_and_an_interrupted_save_leaves_nothing(tmp_path, monkeypatch, token_ids):
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("gpt2"), tiny_tokenizer())
    surgery.duplicate_layers(subject, 1, 3, diff=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(nm.NeuroMagicsError, match="not empty"):
        surgery.save_materialized(subject, tmp_path / "taken")
    before = _logits(subject, token_ids)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(subject.model), "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        surgery.save_materialized(subject, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert subject.program.steps == (0, 1, 2, 1, 2, 3)
    assert torch.equal(_logits(subject, token_ids), before)


# -- the default model ---------------------------------------------------------------------


@pytest.mark.integration
@torch.no_grad()
def test_surgery_on_the_default_model(default_subject, tmp_path):
    subject = default_subject
    encoded = subject.encode("The capital of France is")
    reference = subject.model(**encoded).logits
    pointers = _pointers(subject)
    try:
        surgery.drop_layers(subject, "28", diff=False)
        program = surgery.duplicate_layers(subject, 10, 16, diff=False)
        assert program.steps == tuple(range(16)) + tuple(range(10, 28)) + (29,)
        assert set(_pointers(subject)) == set(pointers) - {p.data_ptr() for p in subject.blocks[28].parameters()}
        expected = subject.model(**encoded, use_cache=False).logits
        assert not torch.allclose(expected, reference)
        folder = surgery.save_materialized(subject, tmp_path / "rys")
        loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        torch.testing.assert_close(loaded(**encoded, use_cache=False).logits, expected, rtol=0, atol=1e-4)
        del loaded
        ours = generate(subject, "The capital of France is", max_new_tokens=4)
        sequence = encoded["input_ids"]
        for _ in range(ours.n_new_tokens):
            step = subject.model(sequence, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, step], dim=1)
        assert ours == subject.tokenizer.decode(sequence[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        subject.reset()
    assert torch.equal(subject.model(**encoded).logits, reference)
