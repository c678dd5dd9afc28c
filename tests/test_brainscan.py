"""Oracle 11 of TESTING.md (brain scan) on every family, the proxies, interrupts and
resume, bad input, and the anatomy of the real default model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.brain_scan import BrainScanResult
from neuro_magics.core.probe_sets import credit, load_probe, number_credit

FACTS = Path(nm.__file__).parent / "probes" / "brainscan_facts.jsonl"

# Items of different lengths, so the probe batch is left-padded.
ITEMS = [
    {"prompt": "ab", "answer": "cd"},
    {"prompt": "The cat sat on the", "answer": "mat"},
    {"prompt": "1 2 3 4", "answer": "5 6"},
    {"prompt": "hello", "answer": "world wide"},
]


def ordinary_score(subject, program, items) -> np.ndarray:
    """Per-item mean answer log-prob with ``program`` applied the ordinary way: one
    unpadded HF forward per item, full log-softmax."""
    tokenizer = subject.tokenizer
    scores = []
    with subject.program_applied(program), torch.no_grad():
        for item in items:
            prompt = tokenizer(item["prompt"])["input_ids"]
            answer = tokenizer(" " + item["answer"], add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + answer])
            logprobs = subject.model(ids, use_cache=False).logits[0].log_softmax(-1)
            targets = torch.tensor(answer)
            scores.append(logprobs[len(prompt) - 1 : len(prompt) - 1 + len(answer)].gather(1, targets[:, None]).mean())
    return np.array([float(s) for s in scores])


def model_state(subject):
    with torch.no_grad():
        logits = subject.model(torch.tensor([[5, 9, 17, 33, 60]]), use_cache=False).logits
    return logits, subject.program, list(subject.adapter.block_list(subject.model))


def assert_untouched(subject, before):
    logits, program, blocks = model_state(subject)
    assert torch.equal(logits, before[0])
    assert program == before[1] and program.is_identity
    assert all(a is b for a, b in zip(blocks, before[2])) and len(blocks) == len(before[2])


def test_every_cell_equals_its_program_applied_the_ordinary_way(tiny):
    before = model_state(tiny)
    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    n = tiny.n_layers
    assert result.delta.shape == (n + 1, n + 1) and result.complete
    baseline = ordinary_score(tiny, nm.LayerProgram.identity(n), ITEMS)
    np.testing.assert_allclose(result.baseline_items, baseline, atol=1e-4, rtol=0)
    assert np.all(np.diag(result.delta) == 0)
    assert np.isnan(result.delta[np.tril_indices(n + 1, -1)]).all()
    for i in range(n):
        for j in range(i + 1, n + 1):
            expected = ordinary_score(tiny, nm.LayerProgram.duplicate(n, i, j), ITEMS)
            np.testing.assert_allclose(result.item_scores[i, j], expected, atol=1e-4, rtol=0, err_msg=f"cell ({i}, {j})")
    assert_untouched(tiny, before)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_repeated_blocks_chunked_runs_and_a_layer_window_match_the_ordinary_way(tiny):
    n = tiny.n_layers
    result = nm.brainscan(tiny, items=ITEMS, times=2, layers="1:4", batch_tokens=1, progress=False)
    assert result.n_configs == 6 and result.complete
    assert np.isnan(result.scores[0, 1:]).all()  # outside the window
    for i in range(1, 4):
        for j in range(i + 1, 5):
            expected = ordinary_score(tiny, nm.LayerProgram.duplicate(n, i, j, times=2), ITEMS)
            np.testing.assert_allclose(result.item_scores[i, j], expected, atol=1e-4, rtol=0)
    assert result.program(1, 3).steps == (0, 1, 2, 1, 2, 1, 2, 3)


@pytest.mark.parametrize("family", ["llama"])
def test_text_probe_scores_every_passage_token_after_the_first(tiny):
    passages = "the quick brown fox\n\njumps over the lazy dog again"
    result = nm.brainscan(tiny, probe="text", items=passages, layers="2:4", progress=False)
    tokenizer = tiny.tokenizer
    with torch.no_grad():
        for row, passage in enumerate(["the quick brown fox", "jumps over the lazy dog again"]):
            ids = torch.tensor([tokenizer(passage)["input_ids"]])
            logprobs = tiny.model(ids, use_cache=False).logits[0, :-1].log_softmax(-1)
            expected = logprobs.gather(1, ids[0, 1:, None]).mean()
            assert result.baseline_items[row] == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_generate_cells_grade_greedy_answers_under_the_program(tiny):
    items = [{"prompt": "12+3=", "answer": "15"}, {"prompt": "The sky is", "answer": "blue"}]
    result = nm.brainscan(tiny, items=items, score="generate", max_new_tokens=6, layers="2:4", progress=False)
    probe = load_probe("math", items)
    for i, j in [(2, 3), (2, 4), (3, 4)]:
        with tiny.program_applied(nm.LayerProgram.duplicate(tiny.n_layers, i, j)):
            outputs = [tiny.generate(item["prompt"], max_new_tokens=6) for item in items]
        expected = [credit(item, output) for item, output in zip(probe.items, outputs)]
        np.testing.assert_array_equal(result.item_scores[i, j], expected)
    assert tiny.program.is_identity


def test_partial_credit_for_numbers():
    assert number_credit(" 1776 is the answer", "1776") == 1.0
    assert number_credit(" 1,776", "1776") == 1.0
    assert number_credit(" 1700\n1776", "1776") == pytest.approx(1 - 76 / 1776)
    assert number_credit(" about 4000", "1776") == 0.0
    assert number_credit(" no idea", "1776") == 0.0


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
def test_proxies_match_hand_computed_layer_inputs(tiny):
    """Block Influence (ShortGPT: 1 - cos(x_l, x_{l+1})) and the angular distance (Gromov
    et al.: arccos(cos(x_i, x_j)) / pi), averaged over every real token of every item, from
    layer inputs taken from HF itself: ``output_hidden_states`` for the inputs of blocks
    0..L-1 (HF's last entry is final-normed) and a plain forward hook for the last block's
    output. Items of different lengths, so padding must be left out."""
    items = [{"prompt": "abc def", "answer": "ghi"}, {"prompt": "x", "answer": "yz"}]
    result = nm.brainscan(tiny, items=items, layers="0:1", progress=False)
    n = tiny.n_layers
    tokenizer = tiny.tokenizer
    per_item = []
    last_outputs = []
    handle = tiny.blocks[-1].register_forward_hook(
        lambda module, args, output: last_outputs.append(output[0] if isinstance(output, tuple) else output))
    try:
        with torch.no_grad():
            for item in items:
                ids = tokenizer(item["prompt"])["input_ids"] + tokenizer(" " + item["answer"], add_special_tokens=False)["input_ids"]
                hidden = tiny.model(torch.tensor([ids[:-1]]), output_hidden_states=True, use_cache=False).hidden_states
                per_item.append(torch.stack([*hidden[:n], last_outputs[-1]])[:, 0])  # [L+1, tokens, d]
    finally:
        handle.remove()
    x = torch.cat(per_item, dim=1).double()  # [L+1, all real tokens, d]
    cosine = torch.stack([torch.stack([torch.cosine_similarity(x[a], x[b], dim=-1) for b in range(n + 1)])
                          for a in range(n + 1)])  # [L+1, L+1, tokens]
    expected_distance = (torch.arccos(cosine.clamp(-1, 1)) / math.pi).mean(-1).numpy()
    np.fill_diagonal(expected_distance, 0.0)
    expected_influence = 1 - np.array([float(cosine[l, l + 1].mean()) for l in range(n)])
    np.testing.assert_allclose(result.block_influence, expected_influence, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.angular_distance, expected_distance, atol=1e-5, rtol=0)
    assert np.all(np.diag(result.angular_distance) == 0)


class InterruptAfter:
    """A forward pre-hook that raises KeyboardInterrupt on its n-th call (like Ctrl-C mid-forward)."""

    def __init__(self, calls: int):
        self.calls = calls

    def __call__(self, module, args):
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt


@pytest.mark.parametrize("family", ["llama"])
@pytest.mark.parametrize("score", ["logprob", "generate"])
def test_interrupt_restores_the_model_keeps_finished_cells_and_resume_completes(tiny, tmp_path, score):
    items = [{"prompt": "12+3=", "answer": "15"}, {"prompt": "hello", "answer": "world"}]
    options = dict(items=items, score=score, max_new_tokens=4, batch_tokens=1, progress=False)
    before = model_state(tiny)
    full = nm.brainscan(tiny, **options)
    path = tmp_path / "scan.npz"
    # Block 3 runs once per config's suffix: stop in the middle of the sweep.
    handle = tiny.blocks[3].register_forward_pre_hook(InterruptAfter(6 if score == "logprob" else 20))
    try:
        partial = nm.brainscan(tiny, save=path, **options)
    finally:
        handle.remove()
    assert partial.interrupted and not partial.complete
    assert 0 < partial.n_finished < partial.n_configs
    assert_untouched(tiny, before)
    saved = BrainScanResult.load(path)
    np.testing.assert_array_equal(saved.scores, partial.scores)
    assert not list(tmp_path.glob(".*partial*"))  # atomic writes leave no temporary file

    resumed = nm.brainscan(tiny, resume=path, **options)
    assert resumed.complete and not resumed.interrupted
    np.testing.assert_allclose(resumed.item_scores, full.item_scores, atol=1e-6, equal_nan=True)
    assert BrainScanResult.load(path).complete
    assert_untouched(tiny, before)


@pytest.mark.parametrize("family", ["llama"])
def test_result_round_trip_and_views(tiny, tmp_path):
    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    loaded = nm.load_result(result.save(tmp_path / "scan"))
    assert isinstance(loaded, BrainScanResult)
    np.testing.assert_array_equal(loaded.delta, result.delta)
    np.testing.assert_array_equal(loaded.angular_distance, result.angular_distance)
    assert loaded.metadata["probe"] == "custom" and loaded.metadata["items"][0] == ["ab", "cd", "match"]
    best = result.best(3)
    assert [c.delta for c in best] == sorted((c.delta for c in best), reverse=True)
    assert best[0].delta == np.nanmax(result.delta[np.triu_indices(5, 1)])
    frame = result.to_pandas()
    assert len(frame) == 10 and set(frame.columns) >= {"i", "j", "block_size", "score", "delta"}
    assert (frame.block_size == frame.j - frame.i).all()
    assert frame.attrs["baseline"] == result.baseline
    assert result.to_numpy() is not None and result.to_numpy().shape == (5, 5)
    assert len(result.figure().data) == 3
    assert repr(result).startswith("BrainScanResult(LlamaForCausalLM, probe custom (4 items, logprob): 10/10 configs")
    assert "0x" not in repr(result)


@pytest.mark.parametrize("family", ["llama"])
def test_widget_marks_baseline_and_best_and_hover_has_the_config(tiny):
    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    widget = result.widget()
    sweep = widget.sweep
    assert sweep.values.shape == (2, 5, 5) and sweep.metrics[0]["scale"] == "diverging"
    labels = {m["label"].split()[0] for m in sweep.marks}
    assert labels == {"baseline", "best"}
    best = result.best(1)[0]
    assert {"row": best.i, "col": best.j, "label": "best"} in sweep.marks
    assert "block_size" in sweep.detail_names and "{block_size:d}" in sweep.tooltip_template
    assert widget.angular.values.shape == (1, 5, 5) and widget.influence.values.shape == (1, 1, 4)

    sweep.selected = [1, 3]  # arrow keys: a preview only, nothing runs
    assert tiny.program.is_identity
    choose(sweep, 1, 3)  # a click (or Enter): applies the config and shows the diff
    assert tiny.program == nm.LayerProgram.duplicate(4, 1, 3)
    assert "Applied duplicate 1:3" in widget.status.value
    tiny.reset()


def choose(heatmap, row: int, col: int) -> None:
    """What the browser sends on a click or on Enter."""
    heatmap._message(heatmap, {"event": "choose", "row": row, "col": col}, [])


@pytest.mark.parametrize("family", ["llama"])
def test_every_click_diffs_the_original_model_and_below_the_diagonal_changes_nothing(tiny):
    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    widget = result.widget()
    choose(widget.sweep, 1, 3)
    choose(widget.sweep, 0, 2)
    assert tiny.program == nm.LayerProgram.duplicate(4, 0, 2)
    second = widget.diff
    assert second.before.program == str(nm.LayerProgram.identity(4)) and second.before.label == "original"
    assert second.after.program == str(nm.LayerProgram.duplicate(4, 0, 2))
    choose(widget.sweep, 3, 1)  # below the diagonal: model and diff stay, the status says so
    assert tiny.program == nm.LayerProgram.duplicate(4, 0, 2) and widget.diff is second
    assert "the model is unchanged" in widget.status.value
    tiny.reset()


@pytest.mark.parametrize("family", ["llama"])
def test_a_click_shows_its_diff_at_once_and_fills_it_in_as_tokens_stream(tiny):
    """The diff widget appears after the cheap parts (continuations still pending) and ends
    holding exactly the finished diff (oracle: a widget drawn from the returned result)."""
    from neuro_magics.widgets import views

    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    shown, pending_seen = [], []
    action = views._apply_and_report(result)

    def show(widget):
        shown.append(widget)
        widget.observe(lambda change: pending_seen.append(change["new"]), names="pending")

    diff = action(1, 3, lambda text: None, show)
    assert len(shown) == 1 and isinstance(shown[0], views.DiffWidget)
    assert shown[0].pending == [] and pending_seen  # it streamed, then finished
    final = views.diff_widget(diff)
    for name in ("pieces_after", "divergence", "stats", "pending"):
        assert getattr(shown[0], name) == getattr(final, name), name
    np.testing.assert_array_equal(shown[0].logprob_after, final.logprob_after)
    tiny.reset()


@pytest.mark.parametrize("family", ["llama"])
def test_a_click_while_the_model_is_busy_says_queued_and_runs_after(tiny):
    import threading
    import time

    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    widget = result.widget()
    statuses = []
    widget.status.observe(lambda change: statuses.append(change["new"]), names="value")
    tiny.lock.acquire()  # a running cell holds the model
    click = threading.Thread(target=choose, args=(widget.sweep, 1, 3))
    click.start()
    time.sleep(0.5)
    assert tiny.program.is_identity and any("queued" in s for s in statuses)
    tiny.lock.release()
    click.join(timeout=60)
    assert tiny.program == nm.LayerProgram.duplicate(4, 1, 3)
    assert any("steps ·" in s for s in statuses)  # per-step progress while it diffs
    tiny.reset()


@pytest.mark.parametrize("family", ["llama"])
def test_a_widget_whose_model_was_unloaded_says_so(tiny):
    result = nm.brainscan(tiny, items=ITEMS, progress=False)
    widget = result.widget()
    tiny.release()
    assert result.subject is None
    choose(widget.sweep, 1, 3)
    assert "not loaded" in widget.status.value
    with pytest.raises(nm.NeuroMagicsError, match="unloaded"):
        nm.compare(tiny, lambda: tiny.program_applied([0, 1]))


@pytest.mark.parametrize("family", ["llama"])
def test_apply_returns_the_diff_and_leaves_the_program_applied(tiny):
    result = nm.brainscan(tiny, items=ITEMS, layers="1:3", progress=False)
    diff = result.apply(1, 3, prompts=["hello there"])
    assert type(diff).__name__ == "DiffResult"
    assert tiny.program == nm.LayerProgram.duplicate(4, 1, 3)
    tiny.reset()
    with pytest.raises(nm.NeuroMagicsError, match="not a duplication"):
        result.apply(3, 3)


@pytest.mark.parametrize("family", ["llama"])
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(probe="poems"), "Unknown probe 'poems'"),
        (dict(probe="nothing/here.jsonl"), "No probe file"),
        (dict(items='{"prompt": "a", "answer": "b"}\n{"prompt": "c", answer: "d"}'), "Line 2 of the cell is not valid JSON"),
        (dict(items='{"prompt": "a"}'), "Line 1 of the cell needs a 'answer'"),
        (dict(layers="0:9"), "reaches block 8, but this model has blocks 0-3"),
        (dict(layers="2:2"), "empty or backwards"),
        (dict(score="sample"), "Unknown --score"),
        (dict(probe="text", score="generate"), "use --score logprob"),
        (dict(times=0), "--times must be at least 1"),
        (dict(limit=0), "--limit must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_model_alone(tiny, options, message):
    before = model_state(tiny)
    with pytest.raises(nm.NeuroMagicsError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        nm.brainscan(tiny, progress=False, **options)
    assert "\n" not in str(error.value)
    assert_untouched(tiny, before)


@pytest.mark.parametrize("family", ["llama"])
def test_resume_refuses_a_different_probe_or_model(tiny, tmp_path):
    path = tmp_path / "scan.npz"
    nm.brainscan(tiny, probe="facts", limit=2, layers="2:4", save=path, progress=False)
    with pytest.raises(nm.NeuroMagicsError, match="different probe"):
        nm.brainscan(tiny, probe="math", limit=2, layers="2:4", resume=path, progress=False)
    with pytest.raises(nm.NeuroMagicsError, match="different score"):
        nm.brainscan(tiny, probe="facts", limit=2, score="generate", resume=path, progress=False)
    with torch.no_grad():
        tiny.model.get_output_embeddings().weight.mul_(1.5)  # same name, other weights
    with pytest.raises(nm.NeuroMagicsError, match="scores the probe differently"):
        nm.brainscan(tiny, probe="facts", limit=2, layers="2:4", resume=path, progress=False)


def test_builtin_probes_are_well_formed():
    math_probe = load_probe("math")
    assert len(math_probe.items) >= 12 and all(item.scorer == "number" for item in math_probe.items)
    for item in math_probe.items:
        assert item.answer.isdigit()
    assert all(item.scorer == "match" for item in load_probe("facts").items)
    text = load_probe("text")
    assert len(text.items) >= 4 and all(item.scorer == "text" and len(item.answer) > 100 for item in text.items)
    assert [item.prompt for item in load_probe("facts", limit=3).items] == [
        json.loads(line)["prompt"] for line in FACTS.read_text().splitlines()
    ][:3]


@pytest.mark.integration
def test_default_model_anatomy_blocks_with_layer_0_are_catastrophic(default_subject):
    """The RYS anatomy on plain text: any duplicated block that includes layer 0 is far
    worse than the median middle block."""
    result = nm.brainscan(default_subject, probe="text", limit=1, progress=False)
    n = default_subject.n_layers
    assert result.complete and default_subject.program.is_identity
    with_layer_0 = result.delta[0, 1:]
    middle = [result.delta[i, j] for i in range(n // 4, 3 * n // 4) for j in range(i + 1, 3 * n // 4 + 1)]
    assert with_layer_0.max() < np.median(middle) - 0.5, (with_layer_0.max(), np.median(middle))
    # The baseline cell is the untouched model.
    expected = ordinary_text_score(default_subject, result.metadata["items"][0][1])
    assert result.baseline == pytest.approx(expected, abs=1e-4)


def ordinary_text_score(subject, passage: str) -> float:
    ids = torch.tensor([subject.tokenizer(passage)["input_ids"]])
    with torch.no_grad():
        logprobs = subject.model(ids, use_cache=False).logits[0, :-1].log_softmax(-1)
    return float(logprobs.gather(1, ids[0, 1:, None]).mean())


@pytest.mark.integration
def test_default_model_cells_equal_the_ordinary_way_with_padding(default_subject):
    items = [json.loads(line) for line in FACTS.read_text().splitlines()][:3]
    result = nm.brainscan(default_subject, items=items, layers="26:30", progress=False)
    n = default_subject.n_layers
    for i, j in [(26, 27), (26, 30), (28, 29)]:
        expected = ordinary_score(default_subject, nm.LayerProgram.duplicate(n, i, j), items)
        np.testing.assert_allclose(result.item_scores[i, j], expected, atol=1e-4, rtol=0)
    assert not math.isnan(result.baseline)
