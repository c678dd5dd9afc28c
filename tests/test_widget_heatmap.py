"""HeatmapWidget: validated inputs, binary state, small payloads, selection observable from Python."""

import json

import numpy as np
import pytest
from ipywidgets.embed import embed_data

from neuro_magics.widgets import HeatmapWidget, WidgetDataError


def scan(n_metrics=2, n_rows=3, n_cols=4, **kwargs):
    values = np.random.default_rng(0).random((n_metrics, n_rows, n_cols), dtype=np.float32)
    metrics = [{"name": f"m{i}", "scale": "sequential"} for i in range(n_metrics)]
    return HeatmapWidget(values, metrics, [f"L{i}" for i in range(n_rows)], [f"t{i}" for i in range(n_cols)], **kwargs)


def test_state_carries_arrays_as_memoryviews():
    widget = scan(marks=[{"row": 1, "col": 2, "label": "best"}])
    state = widget.get_state()
    assert isinstance(state["values"]["view"], memoryview)
    assert state["values"]["dtype"] == "float32" and state["values"]["shape"] == [2, 3, 4]
    assert state["metric"] == "m0" and state["selected"] == []
    assert state["marks"] == [{"row": 1, "col": 2, "label": "best"}]
    assert widget.metrics[0] == {"name": "m0", "label": "m0", "scale": "sequential", "center": None, "fmt": ".4g", "vmin": None, "vmax": None, "clip": None, "log": False, "better": None}


def test_embedded_state_stores_values_as_base64_buffers_not_lists():
    widget = scan()
    state = embed_data(widget, drop_defaults=False)["manager_state"]["state"][widget.model_id]
    assert [buffer["path"] for buffer in state["buffers"]] == [["values", "view"]]
    assert "view" not in state["state"]["values"]
    assert "render" in state["state"]["_esm"]  # the bundle itself travels with the state: no CDN needed


def test_defaults_two_dimensional_values_and_diverging_center():
    widget = HeatmapWidget(np.zeros((2, 3)), [{"name": "delta", "scale": "diverging"}])
    assert widget.values.shape == (1, 2, 3) and widget.values.dtype == np.float32
    assert widget.row_labels == ["0", "1"] and widget.col_labels == ["0", "1", "2"]
    assert widget.metrics[0]["center"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": np.zeros((2, 2, 2, 2))}, r"values must be \[n_metrics, n_rows, n_cols\], got shape \(2, 2, 2, 2\)"),
        ({"values": np.zeros((1, 3, 4)), "row_labels": ["a"]}, "row_labels has 1 entries, values has 3 rows"),
        ({"values": np.zeros((1, 3, 4)), "col_labels": ["a"]}, "col_labels has 1 entries, values has 4 columns"),
        ({"values": np.zeros((2, 3, 4)), "metrics": [{"name": "a"}]}, "1 metrics given for values with 2 metric planes"),
        ({"values": np.zeros((1, 3, 4)), "metrics": [{"name": "a", "scale": "log"}]}, "scale must be one of"),
        ({"values": np.zeros((1, 3, 4)), "metrics": [{"name": "a", "colour": 1}]}, "unknown keys"),
        ({"values": np.zeros((1, 3, 4)), "metric": "nope"}, "metric 'nope' is not one of"),
        ({"values": np.zeros((1, 3, 4)), "marks": [{"row": 5, "col": 0}]}, "outside the"),
        ({"values": np.zeros((1, 3, 4)), "selected": [0, 9]}, r"selected must be \[\] or \[row, col\]"),
        ({"values": np.zeros((1, 3, 4)), "details": {"x": np.zeros((3, 5))}}, r"details must each be \(3, 4\)"),
        ({"values": np.zeros((1, 3, 4)), "detail_token_ids": np.zeros((3, 4, 2), int)}, "needs detail_vocab"),
        ({"values": np.zeros((1, 3, 4)), "detail_token_ids": np.full((3, 4, 2), 7), "detail_vocab": ["a"]}, "refer to id 7"),
        (
            {"values": np.zeros((1, 3, 4)), "detail_token_ids": np.zeros((3, 4, 2), int), "detail_vocab": ["a"], "detail_probs": np.zeros((3, 4, 3))},
            "must have the same shape",
        ),
    ],
)
def test_bad_input_raises_one_line_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        HeatmapWidget(**kwargs)
    assert "\n" not in str(info.value)


def test_reassigning_values_checks_labels_and_rolls_back():
    widget = scan()
    with pytest.raises(WidgetDataError, match="row_labels has 3 entries, values has 5 rows"):
        widget.values = np.zeros((2, 5, 4), dtype=np.float32)
    assert widget.values.shape == (2, 3, 4)
    with widget.hold_trait_notifications():
        widget.values = np.zeros((2, 5, 4), dtype=np.float32)
        widget.row_labels = list("abcde")
    assert widget.grid_shape == (5, 4)


def test_selected_is_observable_from_python():
    widget = scan()
    seen = []
    widget.observe(lambda change: seen.append(change["new"]), names="selected")
    widget.set_state({"selected": [2, 3]})  # what a click in the browser sends
    widget.set_state({"selected": []})
    assert seen == [[2, 3], []]


def test_vocabulary_is_compacted_to_the_tokens_used():
    ids = np.array([[[5, 9], [9, -1]]])
    widget = HeatmapWidget(
        np.zeros((1, 1, 2)),
        detail_token_ids=ids,
        detail_probs=np.full((1, 2, 2), 0.25),
        detail_vocab=[f"tok{i}" for i in range(10)],
    )
    assert widget.detail_vocab == ["tok5", "tok9"]
    assert widget.detail_token_ids.tolist() == [[[0, 1], [1, -1]]]
    assert widget.detail_probs.dtype == np.float16


def payload_bytes(widget) -> int:
    """Bytes on the wire: JSON state plus binary buffers (what a comm message or saved notebook carries)."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    state.pop("_esm")  # the bundle is sent once per widget class and is not data
    return len(json.dumps(state)) + sum(memoryview(buffer).nbytes for buffer in buffers)


def test_layer_by_token_scan_payload_is_well_under_two_megabytes():
    rng = np.random.default_rng(0)
    n_layers, n_tokens, k, vocab_size = 30, 512, 5, 49152
    vocab = [f"▁token{i}" for i in range(vocab_size)]
    widget = HeatmapWidget(
        rng.random((6, n_layers, n_tokens), dtype=np.float32),
        [{"name": f"metric{i}"} for i in range(6)],
        [f"L{i}" for i in range(n_layers)],
        [f" word{i}" for i in range(n_tokens)],
        detail_token_ids=rng.integers(0, vocab_size, (n_layers, n_tokens, k)),
        detail_probs=rng.random((n_layers, n_tokens, k)),
        detail_vocab=vocab,
    )
    size = payload_bytes(widget)
    assert size < 2_000_000, size
    # float32 values and int32 / float16 details dominate; no JSON number lists
    assert size > 6 * n_layers * n_tokens * 4 + n_layers * n_tokens * k * 6


def test_repr_is_short_and_stable():
    assert repr(scan(title="scan")) == "HeatmapWidget(title='scan', metrics=['m0', 'm1'], rows=3, cols=4)"


def test_scan_view_marks_a_planted_sink():
    """A planted sink token (norm 25x the rest at every step) is marked at its peak step; other
    tokens are not."""
    from neuro_magics.widgets.views import SINK_RATIO, sink_marks

    rng = np.random.default_rng(0)
    norm = rng.uniform(20, 40, size=(6, 9))
    norm[:, 0] = 750.0
    norm[4, 0] = 900.0
    marks = sink_marks(norm)
    assert [(m["row"], m["col"]) for m in marks] == [(4, 0)]
    assert "sink: norm 900" in marks[0]["label"]
    norm[:, 0] = 29.0 * SINK_RATIO * 0.5  # under the ratio: no mark
    assert sink_marks(norm) == []


def test_clip_is_a_quantile():
    with pytest.raises(WidgetDataError, match="clip"):
        HeatmapWidget(np.zeros((2, 2)), [{"name": "a", "clip": 0.3}])
    assert HeatmapWidget(np.zeros((2, 2)), [{"name": "a", "clip": 0.98}]).metrics[0]["clip"] == 0.98


def test_block_rows_say_the_step_only_where_a_block_repeats():
    """Rows are named by block; under a duplicated program (0 1 2 1 2 3) the repeated blocks also say their step."""
    from neuro_magics.widgets.views import block_row_labels

    assert block_row_labels([0, 1, 2, 3], [0, 1, 2, 3]) == ["0", "1", "2", "3"]
    assert block_row_labels([0, 1, 2, 3, 4, 5], [0, 1, 2, 1, 2, 3]) == [
        "0", "1 (step 1)", "2 (step 2)", "1 (step 3)", "2 (step 4)", "3"]
    assert block_row_labels([2, 3], [3, 2]) == ["3", "2"]  # a part of a reordered program: blocks, not steps


def test_scan_view_reads_by_block_with_a_log_norm_scale():
    """A real scan of a tiny model under a duplicated program: the y axis says block, rows follow the program's
    blocks, the residual norm is drawn on a log scale (no clip) and the lens metrics say which way is good."""
    import neuro_magics as nm
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    subject.set_program([0, 1, 2, 1, 2, 3])
    widget = nm.scan(subject, "abc abd", lens=True, top_k=2).widget()
    assert widget.row_title == "block"
    assert widget.row_labels == ["0", "1 (step 1)", "2 (step 2)", "1 (step 3)", "2 (step 4)", "3"]
    by_name = {m["name"]: m for m in widget.metrics}
    assert by_name["norm"]["log"] is True and by_name["norm"]["clip"] is None
    assert by_name["target_prob"]["better"] == "higher" and by_name["target_rank"]["better"] == "lower"
    assert by_name["entropy"]["better"] is None and by_name["cos_final"]["log"] is False


def test_log_and_better_are_checked():
    with pytest.raises(WidgetDataError, match="log colour scale is sequential"):
        HeatmapWidget(np.ones((2, 2)), [{"name": "a", "scale": "diverging", "log": True}])
    with pytest.raises(WidgetDataError, match="better must be"):
        HeatmapWidget(np.ones((2, 2)), [{"name": "a", "better": "up"}])
