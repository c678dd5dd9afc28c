"""Figures and widgets paint a value the same colour: the diverging scale is red for positive,
blue for negative in both. The widget's colours are read from the JS source the bundles are
built from (widgets_js/src/colors.js), the figure's from the plotly figure itself."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neuro_magics.analyses.brain_scan import BrainScanResult
from neuro_magics.analyses.diffing import DiffResult, DiffSide
from neuro_magics.analyses.patching import PatchResult
from neuro_magics.analyses.scanning import ScanResult
from neuro_magics.analyses.tracing import TraceResult
from neuro_magics.widgets import colors

COLORS_JS = Path(__file__).resolve().parent.parent / "widgets_js" / "src" / "colors.js"


def js_stops() -> dict[str, list[str]]:
    """The STOPS table of colors.js: {"sequential": [...], "diverging": [...]}."""
    table = re.search(r"const STOPS = \{(.*?)\n\};", COLORS_JS.read_text(), re.S).group(1)
    return {name: re.findall(r'"(#[0-9a-fA-F]{6})"', stops) for name, stops in re.findall(r"(\w+): \[([^\]]*)\]", table)}


def rgb(colour: str) -> np.ndarray:
    colour = colour.strip()
    if colour.startswith("#"):
        return np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)], dtype=float)
    return np.array([float(x) for x in re.findall(r"[\d.]+", colour)[:3]])


def colour_at(colorscale, low: float, high: float, value: float) -> np.ndarray:
    """What plotly paints ``value`` with: linear RGB interpolation between the scale's stops."""
    position = float(np.clip((value - low) / (high - low), 0.0, 1.0))
    stops = [(float(p), rgb(c)) for p, c in colorscale]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if p0 <= position <= p1:
            t = 0.0 if p1 == p0 else (position - p0) / (p1 - p0)
            return np.round(c0 * (1 - t) + c1 * t)
    raise AssertionError(f"position {position} outside the colour scale")


def diverging_scale(figure):
    """(colorscale, low, high) of the figure's first diverging map, from the trace or its colour axis."""
    heatmap = next(trace for trace in figure.data if trace.type == "heatmap")
    if heatmap.coloraxis:
        axis = figure.layout[heatmap.coloraxis]
        return axis.colorscale, axis.cmin, axis.cmax
    return heatmap.colorscale, heatmap.zmin, heatmap.zmax


def is_red(colour: np.ndarray) -> bool:
    return colour[0] > 150 and colour[0] > colour[1] + 80 and colour[0] > colour[2] + 80


def is_blue(colour: np.ndarray) -> bool:
    return colour[2] > 150 and colour[2] > colour[0] + 80


def test_python_scales_are_the_widgets_scales():
    stops = js_stops()
    assert set(stops) == {"sequential", "diverging", "magnitude", "categorical"}
    assert {name: list(value) for name, value in colors.STOPS.items()} == stops


# -- results built from planted values: +2 and -2 are the extremes of every diverging map -------

PLANTED = np.array([[-2.0, 0.5, 0.0], [1.0, np.nan, 2.0]], dtype=np.float32)
TOPK = (np.array([1, 2], dtype=np.int32), np.array([0.6, 0.4], dtype=np.float32))


def patch_result() -> PatchResult:
    return PatchResult(
        site="resid_pre", metric="logit_diff", direction="denoise", method="exact", answers=[" a", " b"],
        answer_ids=[1, 2], clean_tokens=["x", "y", "z"], corrupt_tokens=["x", "Y", "z"], steps=[0, 1], n_cols=3,
        clean_metric=1.0, corrupt_metric=-1.0, effect=PLANTED, patched_metric=PLANTED, attribution=None,
        topk_ids=None, topk_probs=None, clean_topk=TOPK, corrupt_topk=TOPK,
        vocab_ids=np.array([1, 2]), vocab=[" a", " b"], metadata={},
    )


def trace_result() -> TraceResult:
    # clean 1, noised 0: the effect is the probability itself
    return TraceResult(
        tokens=["x", "y", "z"], subject_positions=[1], answer=" a", steps=[0, 1], clean_prob=1.0, corrupt_prob=0.0,
        probs=np.stack([PLANTED, PLANTED / 2, PLANTED / 4]), clean_topk=([" a"], [1.0]), corrupt_topk=([" b"], [1.0]),
        metadata={},
    )


def brainscan_result() -> BrainScanResult:
    scores = np.full((3, 3), np.nan)
    scores[np.diag_indices(3)] = 5.0
    scores[0, 1], scores[0, 2], scores[1, 2] = 3.0, 7.0, 5.5  # delta -2, +2, +0.5
    return BrainScanResult(scores, np.full((3, 3, 1), np.nan), np.array([5.0]), np.zeros(2), np.zeros((3, 3)), {})


def diff_result() -> DiffResult:
    def side(label: str, logprobs: np.ndarray) -> DiffSide:
        return DiffSide(
            label=label, tokens=np.ones((2, 3), dtype=np.int32), pieces=[["p"] * 3] * 2, texts=["ppp"] * 2,
            topk_ids=np.ones((2, 1), dtype=np.int32), topk_probs=np.ones((2, 1), dtype=np.float32),
            topk_pieces=[["p"]] * 2, logprobs=logprobs, perplexity=2.0, depth=2, n_parameters=10, program="0..1",
        )

    before = np.full((2, 3), -1.0, dtype=np.float32)
    return DiffResult(["one", "two"], side("before", before), side("after", before + np.nan_to_num(PLANTED)), {})


def scan_result() -> ScanResult:
    cos = np.array([[-1.0, 0.2, 1.0], [0.5, -0.5, 0.0]], dtype=np.float32)  # the cosine's fixed range is -1..1
    return ScanResult(
        prompt="x y z", tokens=["x", "y", "z"], token_ids=np.arange(3), steps=[0, 1], blocks=[0, 1],
        metric_names=["cos_final"], metrics=cos[None], captures={}, metadata={"program": [0, 1]},
    )


@pytest.mark.parametrize(
    "make, extreme",
    [(patch_result, 2.0), (trace_result, 2.0), (brainscan_result, 2.0), (diff_result, 2.0), (scan_result, 1.0)],
    ids=["patch", "trace", "brainscan", "diff", "scan-cos_final"],
)
def test_figure_paints_positive_red_and_negative_blue_like_the_widget(make, extreme):
    positive, negative = rgb(js_stops()["diverging"][-1]), rgb(js_stops()["diverging"][0])
    assert is_red(positive) and is_blue(negative)  # what the widget paints at +max / -max
    scale, low, high = diverging_scale(make().figure())
    assert low == -extreme and high == extreme, "a diverging figure is symmetric about 0 over the data's range"
    np.testing.assert_array_equal(colour_at(scale, low, high, extreme), positive)
    np.testing.assert_array_equal(colour_at(scale, low, high, -extreme), negative)
    np.testing.assert_array_equal(colour_at(scale, low, high, 0.0), rgb(js_stops()["diverging"][4]))


def test_widgets_of_the_same_results_use_the_diverging_scale():
    """The other half of the agreement: these maps are diverging (centre 0) in the widget too."""
    assert patch_result().widget().heatmap.metrics[0]["scale"] == "diverging"
    assert all(m["scale"] == "diverging" for m in trace_result().widget().heatmap.metrics)
    assert brainscan_result().widget().sweep.metrics[0] == {
        "name": "delta", "label": "Δ score vs baseline", "scale": "diverging", "center": 0.0, "fmt": "+.4f",
        "vmin": None, "vmax": None, "clip": None, "log": False, "better": None,
    }
    assert scan_result().widget().metrics[0]["scale"] == "diverging"
