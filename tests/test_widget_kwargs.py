"""A mistyped widget argument is an error, not a silently dropped setting (as lonboard does)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from neuro_magics.widgets import AttentionWidget, AttributionWidget, DiffWidget, HeatmapWidget
from neuro_magics.widgets.brainscan import BrainScanWidget
from neuro_magics.widgets.lines import LinesWidget
from neuro_magics.widgets.patching import PatchingWidget
from neuro_magics.widgets.scatter import ScatterWidget


def heatmap(**kwargs):
    return HeatmapWidget(np.zeros((2, 3)), **kwargs)


def attention(**kwargs):
    return AttentionWidget(np.full((1, 2, 3, 3), 1 / 3), ["a", "b", "c"], **kwargs)


def diff(**kwargs):
    stats = {"label": "x", "perplexity": 1.0, "depth": 2, "parameters": 3, "program": "0..1"}
    return DiffWidget(
        ["p"], ([["a"]], [["b"]]), [0], (np.zeros((1, 1)), np.zeros((1, 1))), ([["a"]], [["b"]]),
        (np.ones((1, 1)), np.ones((1, 1))), (stats, {**stats, "label": "y"}), **kwargs,
    )


def patching(**kwargs):
    return PatchingWidget(
        np.zeros((1, 2, 3)), [{"name": "effect"}], ["0", "1"], ["a", "b", "c"], col_title="position", title="t",
        reference_topk={"clean": (["a"], [1.0]), "corrupt": (["b"], [1.0])},
        reference_metrics={"clean": 1.0, "corrupt": 0.0}, metric_name="prob", **kwargs,
    )


def brainscan(**kwargs):
    return BrainScanWidget(np.zeros((3, 3)), np.zeros((3, 3)), 0.0, np.zeros(2), np.zeros((3, 3)), **kwargs)


def attribution(**kwargs):
    return AttributionWidget(["a", "b"], 2, ["c"], [1], ["ig"], np.zeros((1, 1, 2)), **kwargs)


def scatter(**kwargs):
    return ScatterWidget(np.zeros((2, 5, 2)), colorings=[{"name": "label", "kind": "category", "values": np.zeros(5)}],
                         **kwargs)


def lines(**kwargs):
    return LinesWidget(np.zeros((2, 3)), ["a", "b"], ["0", "1", "2"], **kwargs)


BUILDERS = {"heatmap": heatmap, "attention": attention, "diff": diff, "patching": patching, "brainscan": brainscan,
            "attribution": attribution, "scatter": scatter, "lines": lines}


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS)
def test_an_unknown_keyword_is_a_type_error(build):
    with pytest.raises(TypeError, match="titel"):
        build(titel="a typo of title")


@pytest.mark.parametrize("build", [heatmap, attention, diff, attribution, scatter, lines],
                         ids=["heatmap", "attention", "diff", "attribution", "scatter", "lines"])
def test_real_traits_are_still_accepted_and_nothing_warns(build):
    """ipywidgets' own traits (layout, tabbable) pass through; a valid widget raises no DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        widget = build(title="a title", layout={"width": "300px"}, tabbable=True)
    assert widget.title == "a title" and widget.layout.width == "300px" and widget.tabbable


def test_the_error_names_the_argument_and_the_traits():
    with pytest.raises(TypeError) as error:
        heatmap(colour_scale="RdBu")
    message = str(error.value)
    assert "HeatmapWidget" in message and "'colour_scale'" in message and "row_labels" in message
    assert "\n" not in message
