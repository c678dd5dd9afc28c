"""nm.compare / DiffResult: numbers against HF's own forward, restore guarantees, data API."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses import diffing
from neuro_magics.analyses.diffing import DiffResult, first_divergence
from neuro_magics.widgets.diff import DiffWidget
from tiny_models import tiny_model, tiny_tokenizer

PROMPTS = ["hello there", "abc", "The cat sat on"]
RYS = (0, 1, 2, 1, 2, 3)


def _subject(family: str = "llama") -> nm.Subject:
    subject = nm.Subject(tiny_model(family), tiny_tokenizer())
    subject.model.generation_config.eos_token_id = None  # random models: always run every step
    return subject


def _reference_logits(subject, prompts):
    encoded = subject.encode(prompts)
    with torch.no_grad():
        return subject.model(**encoded, position_ids=nm.core.runner.position_ids_for(encoded["attention_mask"]),
                             use_cache=False).logits


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "qwen2"])
def test_numbers_match_hf_forwards_on_both_sides(family):
    subject = _subject(family)
    result = nm.compare(subject, lambda: subject.program_applied(RYS), PROMPTS, max_new_tokens=5, top_k=3)
    encoded = subject.encode(PROMPTS)
    n_prompt = encoded["input_ids"].shape[1]
    continuation = torch.as_tensor(result.before.tokens, dtype=torch.long)
    sequence = torch.cat([encoded["input_ids"], continuation], dim=1)
    mask = torch.cat([encoded["attention_mask"], torch.ones_like(continuation)], dim=1)
    text = subject.tokenizer(diffing.perplexity_text(), return_tensors="pt")["input_ids"][:, :128]
    for side, context in ((result.before, contextlib.nullcontext()), (result.after, subject.program_applied(RYS))):
        with context, torch.no_grad():
            logits = subject.model(sequence, attention_mask=mask, position_ids=nm.core.runner.position_ids_for(mask),
                                   use_cache=False).logits
            log_probs = logits[:, n_prompt - 1:-1].log_softmax(-1)
            expected = log_probs.gather(-1, continuation[..., None])[..., 0]
            np.testing.assert_allclose(side.logprobs, expected.numpy(), rtol=0, atol=1e-5)
            probs = logits[:, n_prompt - 1].softmax(-1)
            np.testing.assert_allclose(side.topk_probs, probs.topk(3).values.numpy(), rtol=0, atol=1e-6)
            loss = subject.model(text, labels=text, use_cache=False).loss
            assert side.perplexity == pytest.approx(math.exp(loss.item()), rel=1e-5)
            # greedy continuations equal an uncached greedy loop (KV cache correct on both sides)
            greedy = encoded["input_ids"]
            greedy_mask = encoded["attention_mask"]
            for _ in range(5):
                step = subject.model(greedy, attention_mask=greedy_mask, use_cache=False,
                                     position_ids=nm.core.runner.position_ids_for(greedy_mask)).logits[:, -1]
                greedy = torch.cat([greedy, step.argmax(-1, keepdim=True)], dim=1)
                greedy_mask = torch.cat([greedy_mask, torch.ones_like(greedy_mask[:, :1])], dim=1)
            assert np.array_equal(side.tokens, greedy[:, n_prompt:].numpy())
    assert (result.before.depth, result.after.depth) == (4, 6)
    assert result.before.n_parameters == result.after.n_parameters
    assert (result.before.program, result.after.program) == ("0-3", "0-2,1-3")
    assert subject.program.is_identity


def test_a_no_op_change_gives_exactly_zero_change():
    subject = _subject()
    result = nm.compare(subject, contextlib.nullcontext, PROMPTS, max_new_tokens=4)
    assert np.all(result.logprob_change == 0)
    assert np.all(result.divergence == -1) and result.n_changed == 0
    assert result.before.perplexity == result.after.perplexity
    assert np.array_equal(result.before.topk_ids, result.after.topk_ids)


def test_a_steering_style_hook_change_is_measured_and_removed():
    subject = _subject()
    reference = _reference_logits(subject, PROMPTS)

    @contextlib.contextmanager
    def push_block_2():
        handle = subject.blocks[2].register_forward_hook(
            lambda module, args, output: (output[0] + 3.0, *output[1:]) if isinstance(output, tuple) else output + 3.0)
        try:
            yield
        finally:
            handle.remove()

    result = nm.compare(subject, push_block_2, PROMPTS, max_new_tokens=4, label_after="steered")
    assert result.after.label == "steered" and result.after.depth == result.before.depth
    assert not np.allclose(result.logprob_change, 0)
    assert torch.equal(_reference_logits(subject, PROMPTS), reference)


def test_the_after_side_is_the_plain_greedy_continuation_however_early_it_parts():
    """The after side reuses the before continuation up to where its argmax disagrees and
    generates only past that. Oracle: HF's own ``generate`` (greedy, KV cache) of the changed
    model on every prompt alone, cut after its end token. Pushes of growing size along a
    random direction make rows part at different positions or never; one token of the
    unchanged continuation is made the end token, so some rows end early."""
    subject = _subject()
    prompts = ["hello there", "abc", "The cat sat on", "x y z", "a", "the end of it"]
    unchanged = nm.compare(subject, contextlib.nullcontext, prompts, max_new_tokens=8)
    end = int(unchanged.before.tokens[1, 4])
    subject.model.generation_config.eos_token_id = end
    direction = torch.randn(subject.d_model, generator=torch.Generator().manual_seed(0))
    seen_parting, seen_ends = set(), 0
    for size in (0.0, 3e-4, 1e-3, 3e-3, 6e-3, 1e-2):
        @contextlib.contextmanager
        def push():
            shift = size * direction
            handle = subject.blocks[1].register_forward_hook(
                lambda module, args, output: (output[0] + shift, *output[1:]) if isinstance(output, tuple)
                else output + shift)
            try:
                yield
            finally:
                handle.remove()

        result = nm.compare(subject, push, prompts, max_new_tokens=8)
        with push(), torch.no_grad():
            for row, prompt in enumerate(prompts):
                encoded = subject.encode(prompt)
                out = subject.model.generate(**encoded, max_new_tokens=8, do_sample=False,
                                             pad_token_id=subject.pad_token_id)[0, encoded["input_ids"].shape[1]:]
                expected = out.tolist()
                if end in expected:
                    expected = expected[:expected.index(end) + 1]
                    seen_ends += 1
                got = [t for t in result.after.tokens[row].tolist() if t >= 0]
                assert got == expected, (size, prompt)
        seen_parting.update(result.divergence.tolist())
    assert -1 in seen_parting and len(seen_parting - {-1, 0}) >= 2 and seen_ends  # parts late, never; ends


def test_partial_diffs_stream_the_cheap_parts_first_then_each_token():
    """``on_update`` sees the after side's log-probs, top-k and perplexity complete from the
    first call, and continuations that only ever grow towards the final ones (oracle: the
    returned result); rows not pending are already final."""
    subject = _subject()
    prompts = ["hello there", "abc", "The cat sat on", "x y z", "a", "the end of it"]
    direction = torch.randn(subject.d_model, generator=torch.Generator().manual_seed(0))

    @contextlib.contextmanager
    def push():
        handle = subject.blocks[1].register_forward_hook(lambda module, args, output: output + 3e-3 * direction)
        try:
            yield
        finally:
            handle.remove()

    partials = []
    result = nm.compare(subject, push, prompts, max_new_tokens=8, on_update=partials.append)
    assert partials and result.pending == ()
    first = partials[0]
    np.testing.assert_array_equal(first.after.logprobs, result.after.logprobs)
    assert first.after.perplexity == result.after.perplexity
    known_before = 0
    for partial in partials:
        known = partial.after.tokens >= 0
        np.testing.assert_array_equal(partial.after.tokens[known], result.after.tokens[known])
        done = [row for row in range(len(prompts)) if row not in partial.pending]
        np.testing.assert_array_equal(partial.after.tokens[done], result.after.tokens[done])
        assert known.sum() >= known_before
        known_before = known.sum()
    assert first.pending and len(partials) > 1  # something was left to generate, and it streamed


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_the_subject_is_restored_after_an_interrupt_inside_the_change(failure, monkeypatch):
    subject = _subject()
    subject.set_program((0, 1, 1, 2, 3))
    reference = _reference_logits(subject, PROMPTS)
    measure = diffing._measure
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # inside the change
            raise failure
        return measure(*args, **kwargs)

    monkeypatch.setattr(diffing, "_measure", interrupted)
    with pytest.raises(failure):
        nm.compare(subject, lambda: subject.program_applied(RYS), PROMPTS, max_new_tokens=3)
    assert subject.program.steps == (0, 1, 1, 2, 3)
    assert torch.equal(_reference_logits(subject, PROMPTS), reference)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompts=[]), "Empty prompt"),
        (dict(prompts=["ok", ""]), "Empty prompt"),
        (dict(max_new_tokens=0), "at least 1"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=10**6), "top_k"),
        (dict(prompts=["x" * 120], max_new_tokens=24), "context"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(kwargs, message):
    subject = _subject()
    entered = []

    @contextlib.contextmanager
    def change():
        entered.append(1)
        yield

    with pytest.raises(nm.NeuroMagicsError, match=message) as info:
        nm.compare(subject, change, **{"prompts": PROMPTS, **kwargs})
    assert "\n" not in str(info.value) and not entered


def test_the_before_side_is_reused_only_while_the_model_is_unchanged():
    """A second diff from the same state reuses the before side; any change of what the model
    computes (a user's in-place weight edit announced with ``subject.touch()``, a program, an
    intervention) measures it again. Oracle: the before perplexity of a fresh Subject."""
    subject = _subject()
    change = lambda: subject.program_applied(RYS)  # noqa: E731
    first = nm.compare(subject, change, PROMPTS, max_new_tokens=3)
    second = nm.compare(subject, change, PROMPTS, max_new_tokens=3)
    assert second.before is first.before
    with torch.no_grad():
        subject.model.lm_head.weight.data.mul_(1.5)  # .data: no version bump
    subject.touch()
    edited = nm.compare(subject, change, PROMPTS, max_new_tokens=3)
    fresh = nm.Subject(subject.model, subject.tokenizer)
    reference = nm.compare(fresh, change, PROMPTS, max_new_tokens=3)
    assert edited.before.perplexity == reference.before.perplexity != first.before.perplexity
    subject.set_program([0, 1, 2, 3, 3])
    assert nm.compare(subject, change, PROMPTS, max_new_tokens=3).before.depth == 5
    subject.reset()


def test_first_divergence():
    before = np.array([[1, 2, 3], [1, 2, 3], [1, 2, -1], [4, 5, 6]])
    after = np.array([[1, 2, 3], [1, 9, 3], [1, 2, 7], [7, 5, 6]])
    assert first_divergence(before, after).tolist() == [-1, 1, 2, 0]


@pytest.fixture(scope="module")
def diff_result() -> DiffResult:
    subject = _subject()
    subject.model.generation_config.eos_token_id = 40  # "%" ends some continuations early
    return nm.compare(subject, lambda: subject.program_applied(RYS), PROMPTS, max_new_tokens=6)


def test_save_and_load_round_trip(diff_result, tmp_path):
    path = diff_result.save(tmp_path / "diff")
    loaded = nm.load_result(path)
    assert isinstance(loaded, DiffResult) and repr(loaded) == repr(diff_result)
    for side in ("before", "after"):
        ours, theirs = getattr(diff_result, side), getattr(loaded, side)
        for name in ("tokens", "topk_ids", "topk_probs", "logprobs"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
        assert ours.fields() == theirs.fields()
    assert loaded.metadata["program_after"] == "0-2,1-3"
    assert loaded.metadata["prompts"] == PROMPTS


def test_data_views(diff_result):
    frame = diff_result.to_pandas()
    assert len(frame) == int(diff_result.before.lengths.sum())
    assert list(frame.columns) == ["prompt_index", "prompt", "position", "token", "token_after", "logprob_before",
                                   "logprob_after", "logprob_change", "diverged"]
    np.testing.assert_allclose(frame["logprob_change"], frame["logprob_after"] - frame["logprob_before"], atol=1e-6)
    assert diff_result.to_numpy().shape == (len(PROMPTS), 6)
    figure = diff_result.figure()
    assert figure.data[0].type == "heatmap" and "perplexity" in figure.layout.title.text
    text = repr(diff_result)
    assert "\n" not in text and "depth 4 -> 6" in text and "continuations changed" in text
    assert diff_result.stats()["after"]["depth"] == 6


def test_continuations_stop_at_the_end_token(diff_result):
    for side in (diff_result.before, diff_result.after):
        for row, pieces in zip(side.tokens, side.pieces):
            valid = row[row >= 0].tolist()
            assert len(pieces) == len(valid)
            if 40 in valid:
                assert valid.index(40) == len(valid) - 1  # kept, and nothing after it
            assert np.all(row[len(valid):] == -1)
    # log-probs exist exactly where the original continuation has tokens
    assert np.array_equal(~np.isnan(diff_result.before.logprobs), diff_result.before.tokens >= 0)


def test_widget_carries_the_result(diff_result):
    widget = diff_result.widget()
    assert widget.prompts == PROMPTS
    assert widget.divergence == diff_result.divergence.tolist()
    assert widget.pieces_before == diff_result.before.pieces
    np.testing.assert_array_equal(widget.logprob_after, diff_result.after.logprobs)
    assert widget.topk_probs.shape == (2, len(PROMPTS), 5)
    assert [s["depth"] for s in widget.stats] == [4, 6]
    bundle = diff_result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/plain"] == repr(diff_result)
    widget.selected = 1
    with pytest.raises(ValueError):
        widget.selected = len(PROMPTS)


def test_widget_rejects_inconsistent_input(diff_result):
    b, a = diff_result.before, diff_result.after
    good = dict(
        prompts=PROMPTS, pieces=(b.pieces, a.pieces), divergence=[0, 0, 0], logprobs=(b.logprobs, a.logprobs),
        topk_pieces=(b.topk_pieces, a.topk_pieces), topk_probs=(b.topk_probs, a.topk_probs),
        stats=tuple({"label": s.label, "perplexity": 1.0, "depth": 1, "parameters": 1, "program": "0"} for s in (b, a)),
    )
    DiffWidget(**good)
    for bad in (dict(divergence=[0]), dict(prompts=PROMPTS[:2]), dict(logprobs=(b.logprobs, a.logprobs[:, :2])),
                dict(stats=({"label": "x"}, good["stats"][1]))):
        with pytest.raises(ValueError):
            DiffWidget(**{**good, **bad})


@pytest.mark.integration
def test_compare_on_the_default_model(default_subject):
    subject = default_subject
    program = nm.LayerProgram.duplicate(subject.n_layers, 10, 16)
    result = nm.compare(subject, lambda: subject.program_applied(program),
                        ["The capital of France is", "Water boils at a temperature of"], max_new_tokens=8)
    assert result.before.texts[0].startswith(" Paris")
    assert (result.before.depth, result.after.depth) == (30, 36)
    assert result.before.n_parameters == result.after.n_parameters
    assert 1 < result.before.perplexity < 100 and result.after.perplexity != result.before.perplexity
    assert subject.program.is_identity
