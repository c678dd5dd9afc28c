"""A real ScanResult's views in chromium: the layer x token heatmap (lens values and top-k
tokens on hover, click selects) and the attention explorer of the same scan."""

from __future__ import annotations

import numpy as np
import pytest

import neuro_magics as nm
from tiny_models import tiny_model, tiny_tokenizer

PROMPT = "abc abc"


@pytest.fixture(scope="module")
def scanned():
    subject = nm.Subject(tiny_model("llama", attn="sdpa"), tiny_tokenizer())
    return nm.scan(subject, PROMPT, lens=True, attention=True, top_k=3)


def cell_center(page, row, col, rows, cols):
    box = page.locator(".nm-overlay").first.bounding_box()
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def test_scan_heatmap_and_attention_explorer(open_widget, scanned):
    heatmap, attention = scanned.widget().children
    view = open_widget(heatmap, attention)
    page = view.page
    rows, cols = len(scanned.steps), len(scanned.tokens)

    grid = view.canvas_stats(".nm-grid")
    assert grid["painted"] > 1000 and grid["colours"] > 5, grid
    options = page.locator("select.nm-metric option").all_inner_texts()
    assert any("lens p(target)" in o for o in options) and any("block influence" in o for o in options)

    # the logit-lens picture: every cell writes its top token (the tiny model's cells are wide enough)
    assert int(page.locator(".nm-grid").get_attribute("data-cell-texts")) == rows * cols
    assert page.locator(".nm-legend").first.inner_text().count("top token") == 1

    x, y = cell_center(page, 2, 3, rows, cols)  # block 2, the space token
    page.mouse.move(x, y)
    tooltip = page.locator(".nm-tooltip").first
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "block 2 · token " in text and "␣" not in text
    probability = float(scanned.metric("target_prob")[2, 3])
    assert f"{float(f'{probability:.3g}'):g}" in text  # rounded to 3 significant digits, as numpy's .3g
    top_token, top_probability = scanned.top_tokens(2, 3)[0]
    assert "top 3 tokens" in text and top_token.strip() in text and f"{float(f'{top_probability:.3g}'):g}" in text
    view.screenshot("-hover")

    page.mouse.click(x, y)
    assert view.root(0).get_attribute("data-selected") == "2,3"
    assert view.model_state("selected", 0) == [2, 3]

    thumbs = view.canvas_stats(".nm-thumbs")
    assert thumbs["painted"] > 1000, thumbs
    overlay = page.locator(".nm-thumbs-overlay").bounding_box()
    page.evaluate(
        """([x, y]) => document.querySelector(".nm-thumbs-overlay").dispatchEvent(
               new MouseEvent("click", { clientX: x, clientY: y, bubbles: true }))""",
        [overlay["x"] + 60 + 1 * 52 + 22, overlay["y"] + 16 + 3 * 68 + 22],  # layer 3, head 1
    )
    assert view.model_state("selected", 1) == [3, 1]
    assert page.locator(".nm-attn-zoom-title").inner_text().startswith("layer 3 · head 1 (kv head 0)")
    assert view.canvas_stats(".nm-zoom")["painted"] > 1000
    assert not np.isnan(scanned.scores["previous_token"]).any()
    view.screenshot()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_scan_norm_reads_on_a_log_scale(open_widget, scanned, theme):
    """The residual-norm view says its log colour scale in the legend and writes each cell's rounded norm."""
    heatmap = scanned.widget().children[0]
    heatmap.metric = "norm"
    view = open_widget(heatmap, theme=theme)
    legend = view.page.locator(".nm-legend").inner_text()
    assert "log colour scale" in legend
    norm = scanned.metric("norm")
    assert int(view.page.locator(".nm-grid").get_attribute("data-cell-texts")) == norm.size
    assert view.page.locator(".nm-row-axis").count() == 1
    view.screenshot()
