"""The network gallery of a real NetworksResult in chromium: the networks x layers map draws,
its tooltip names the network, layer and neuron count, a click selects the network; the time
course over a text draws with the text's tokens on its axis."""

from __future__ import annotations

import warnings

import pytest

import neuro_magics as nm
from neuro_magics.core.errors import NeuroMagicsWarning
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["The cat sat on the mat and looked at the door.", "x = [i * i for i in range(10)]",
         "Seven times eight is fifty-six."] * 8


@pytest.fixture(scope="module")
def gallery():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuroMagicsWarning)
        result = nm.networks(subject, TEXTS, components=3, threshold=1.5, progress=False)
    return result, result.widget()


def test_gallery_map_and_time_course_draw_and_select(open_widget, gallery):
    result, widget = gallery
    view = open_widget(widget.where, widget.course)
    page = view.page
    assert view.canvas_stats(".nm-grid")["painted"] > 1000
    box = page.locator(".nm-overlay").first.bounding_box()
    rows, cols = result.n_networks, len(result.layers)
    x, y = box["x"] + 2.5 * box["width"] / cols, box["y"] + 1.5 * box["height"] / rows  # network 1, layer 2
    page.mouse.move(x, y)
    tooltip = page.locator(".nm-tooltip").first
    tooltip.wait_for(state="visible")
    assert f"network 1 · block 2 · {int(result.counts[1, 2])} neurons" in tooltip.inner_text()
    page.mouse.click(x, y)
    assert view.model_state("selected", 0) == [1, 2]
    course = page.locator(".nm-root").nth(1)
    assert "time courses over text" in course.inner_text()
    pieces, _ = result.time_course(0, int(widget.text.value))
    assert view.model_state("col_labels", 1) == pieces
    view.screenshot()
