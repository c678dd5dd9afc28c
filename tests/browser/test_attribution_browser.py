"""AttributionWidget in chromium: shaded tokens, hover a generated token, method switch, matrix,
DLA map (a head click syncs back), SVG and PNG downloads, and a legible dark theme."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from neuro_magics.widgets import AttributionWidget
from neuro_magics.widgets.colors import STOPS, rgb

# prompt "The cat sat" + generated " on", " the": sources The, cat, sat, on (4)
TOKENS = ["The", " cat", " sat", " on", " the"]
TARGETS = [" on", " the"]
POSITIONS = [2, 3]


def widget(**kwargs) -> AttributionWidget:
    scores = np.zeros((2, 2, 4), dtype=np.float32)
    scores[0] = [[0.0, 2.0, -1.0, 0.0], [0.1, 0.3, 0.2, -2.0]]  # ig
    scores[1] = [[0.5, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 1.0]]  # occlusion
    heads = np.array([[0.1, -0.4, 0.0], [0.9, 0.2, -0.1]], dtype=np.float32)
    sources = np.zeros((2, 3, 4), dtype=np.float32)
    sources[1, 0] = [0.0, 0.8, 0.1, 0.0]
    return AttributionWidget(
        TOKENS, 3, TARGETS, POSITIONS, ["ig", "occlusion"], scores, title="attribution: tiny",
        explained="log p of each of 2 generated tokens", dla_heads=heads, dla_attn=heads.sum(1), dla_mlp=np.array(
            [0.3, -0.2], dtype=np.float32), dla_sources=sources,
        dla_summary={"embed": 0.1, "bias": 0.0, "other": 0.0, "total": 0.8}, row_labels=["0", "1"], **kwargs)


def colour(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).backgroundColor")


def css(hex_colour: str) -> str:
    return "rgb({}, {}, {})".format(*rgb(hex_colour))


def test_tokens_hover_methods_matrix_and_dla(open_widget):
    view = open_widget(widget())
    page = view.page
    tokens = page.locator(".nm-attr-text .nm-attr-token")
    assert tokens.count() == 5
    assert colour(tokens.nth(1)) == css(STOPS["diverging"][-1])  # +2.0, the largest: the red end
    assert colour(tokens.nth(0)) == "rgba(0, 0, 0, 0)"  # 0: unshaded, the page shows through
    assert "nm-attr-target" in tokens.nth(3).get_attribute("class")  # ' on' is explained first
    view.screenshot("-tokens")

    tokens.nth(4).hover()  # the second generated token: its sources are painted
    page.wait_for_function("window.widgetModels[0].get('target_index') === 1")
    assert colour(tokens.nth(3)) == css(STOPS["diverging"][0])  # -2.0: the blue end
    assert "nm-attr-target" in tokens.nth(4).get_attribute("class")

    page.select_option("select", "occlusion")
    assert view.model_state("method") == "occlusion"
    assert colour(tokens.nth(1)) == "rgba(0, 0, 0, 0)"  # occlusion of ' cat' for ' the' is 0

    page.locator('[data-view="matrix"]').click()
    assert page.locator(".nm-attr-svg [data-cell]").count() == 3 + 4  # later positions are left empty
    view.screenshot("-matrix")

    page.locator('[data-view="dla"]').click()
    assert page.locator(".nm-attr-svg [data-cell]").count() == 2 * (3 + 1)
    page.locator('[data-cell="1,0"]').click()
    assert view.model_state("selected_head") == [1, 0]
    assert "head 1.0" in page.locator(".nm-readout").inner_text()
    assert colour(tokens.nth(1)) == css(STOPS["diverging"][-1])  # what head 1.0 moved from ' cat'
    view.screenshot("-head")


@pytest.mark.parametrize("view_name", ["tokens", "matrix", "dla"])
def test_every_view_downloads_as_svg_and_png(open_widget, tmp_path, view_name):
    view = open_widget(widget(view=view_name))
    page = view.page
    with page.expect_download() as svg_download:
        page.get_by_role("button", name="SVG").click()
    svg = (tmp_path / "view.svg")
    svg_download.value.save_as(svg)
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>") and "<rect" in text
    assert css(STOPS["diverging"][-1]) in text  # the largest value, painted as on screen
    with page.expect_download() as png_download:
        page.get_by_role("button", name="PNG").click()
    png = tmp_path / "view.png"
    png_download.value.save_as(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 200 and height > 40
    assert png_download.value.suggested_filename == f"attribution-{view_name}.png"


@pytest.mark.parametrize("theme", ["dark", "os-dark"])
def test_dark_theme_is_legible(open_widget, theme):
    view = open_widget(widget(), theme=theme)
    text = view.page.locator(".nm-attr-text .nm-attr-token").first.evaluate("el => getComputedStyle(el).color")
    red, green, blue = (int(part) for part in text[text.index("(") + 1: text.index(")")].split(",")[:3])
    assert 0.2126 * red + 0.7152 * green + 0.0722 * blue > 180, text
    view.screenshot()


def test_a_dla_head_click_opens_its_pattern_in_the_attention_explorer(open_widget):
    """A real result's view: the DLA map and the attention explorer are linked in the browser
    (no kernel needed), so a head click zooms the explorer onto that head."""
    import neuro_magics as nm
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    box = nm.attribute(subject, "abc abc", method=["occlusion", "rollout"], progress=False).widget()
    view = open_widget(*box.children)  # dependency_state embeds the jslink between them
    page = view.page
    page.locator('[data-view="dla"]').click()
    page.locator('[data-cell="2,3"]').click()
    assert view.model_state("selected_head", 0) == [2, 3]
    page.wait_for_function("window.widgetModels[1].get('selected').join(',') === '2,3'")
    assert page.locator(".nm-root").nth(1).get_attribute("data-selected") == "2,3"
    view.screenshot("-explorer")
