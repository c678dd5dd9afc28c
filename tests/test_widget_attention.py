"""AttentionWidget: validated inputs, float16 patterns on the wire, selection observable from Python."""

import numpy as np
import pytest

from neuro_magics.widgets import AttentionWidget


def causal_patterns(n_layers=3, n_heads=4, n_tokens=5, seed=0):
    scores = np.random.default_rng(seed).normal(size=(n_layers, n_heads, n_tokens, n_tokens))
    scores[..., np.triu_indices(n_tokens, 1)[0], np.triu_indices(n_tokens, 1)[1]] = -np.inf
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def explorer(**kwargs):
    patterns = causal_patterns()
    scores = {"entropy": np.ones((3, 4)), "previous-token": np.zeros((3, 4))}
    return AttentionWidget(patterns, ["<s>", " a", " b", "\n", " c"], head_scores=scores, **kwargs)


def test_state_is_binary_float16_and_defaults_are_filled():
    widget = explorer(n_kv_heads=2)
    state = widget.get_state()
    assert isinstance(state["patterns"]["view"], memoryview)
    assert state["patterns"]["dtype"] == "float16" and state["patterns"]["shape"] == [3, 4, 5, 5]
    assert state["score_values"]["dtype"] == "float32" and state["score_values"]["shape"] == [2, 3, 4]
    assert state["score_names"] == ["entropy", "previous-token"] and state["score"] == "entropy"
    assert state["layer_labels"] == ["0", "1", "2"] and state["layer_range"] == [0, 2]
    assert state["n_kv_heads"] == 2 and state["selected"] == []


def test_thirty_layers_nine_heads_sixty_four_tokens_payload():
    widget = AttentionWidget(causal_patterns(30, 9, 64), [f"t{i}" for i in range(64)])
    assert widget.get_state()["patterns"]["view"].nbytes == 30 * 9 * 64 * 64 * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patterns": np.zeros((2, 2, 3)), "tokens": list("abc")}, r"patterns must be \[n_layers, n_heads, n_tokens, n_tokens\]"),
        ({"patterns": np.zeros((2, 2, 3, 4)), "tokens": list("abc")}, r"patterns must be \[n_layers, n_heads, n_tokens, n_tokens\]"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("ab")}, "tokens has 2 entries, patterns has 3 tokens"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("abc"), "layer_labels": ["x"]}, "layer_labels has 1 entries, patterns has 2 layers"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("abc"), "head_scores": {"e": np.zeros((2, 3))}}, r"head scores must each be \[n_layers, n_heads\]"),
        ({"patterns": np.zeros((2, 4, 3, 3)), "tokens": list("abc"), "n_kv_heads": 3}, "n_kv_heads must divide the 4 heads, got 3"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("abc"), "layer_range": [1, 5]}, "layer_range must be"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("abc"), "selected": [2, 0]}, r"selected must be \[\] or \[layer, head\]"),
        ({"patterns": np.zeros((2, 2, 3, 3)), "tokens": list("abc"), "score": "induction"}, "score 'induction' is not one of"),
    ],
)
def test_bad_input_raises_one_line_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        AttentionWidget(**kwargs)
    assert "\n" not in str(info.value)


def test_selected_and_layer_range_are_observable_from_python():
    widget = explorer()
    seen = []
    widget.observe(lambda change: seen.append((change["name"], change["new"])), names=["selected", "layer_range"])
    widget.set_state({"selected": [1, 3]})
    widget.set_state({"layer_range": [1, 2]})
    assert seen == [("selected", [1, 3]), ("layer_range", [1, 2])]


def test_reassigning_patterns_checks_tokens_and_rolls_back():
    widget = explorer()
    with pytest.raises(ValueError, match="tokens has 5 entries, patterns has 6 tokens"):
        widget.patterns = causal_patterns(3, 4, 6)
    assert widget.patterns.shape == (3, 4, 5, 5)
    with widget.hold_trait_notifications():
        widget.patterns = causal_patterns(3, 4, 6)
        widget.tokens = list("abcdef")
    assert widget.patterns.shape == (3, 4, 6, 6)


def test_repr_is_short_and_stable():
    assert repr(explorer()) == "AttentionWidget(title='', layers=3, heads=4, tokens=5, scores=['entropy', 'previous-token'])"
