"""DiffWidget in chromium: continuations side by side, divergence marks, click shows top-k and syncs, themes."""

import numpy as np
import pytest

from neuro_magics.widgets.diff import DiffWidget

PROMPTS = ["The capital of France is", "def fibonacci(n):\n", "2 + 2 ="]
BEFORE = [[" Paris", ".", " It", " is"], ["    ", "if", " n"], [" 4", "."]]
AFTER = [[" Paris", ",", " the", " city"], ["    ", "if", " n"], [" 4"]]


def diff_widget() -> DiffWidget:
    before = np.full((3, 4), np.nan, dtype=np.float32)
    after = np.full((3, 4), np.nan, dtype=np.float32)
    before[0], after[0] = [-0.5, -1.0, -2.0, -0.2], [-0.6, -3.5, -1.0, -0.2]
    before[1, :3], after[1, :3] = [-0.1, -0.3, -0.2], [-0.1, -0.3, -0.2]
    before[2, :2], after[2, :2] = [-0.05, -0.5], [-0.04, -0.9]
    topk_before = np.array([[0.6, 0.2, 0.1], [0.9, 0.05, 0.01], [0.8, 0.1, 0.05]], dtype=np.float32)
    topk_after = np.array([[0.5, 0.3, 0.1], [0.9, 0.05, 0.01], [0.7, 0.2, 0.05]], dtype=np.float32)
    return DiffWidget(
        PROMPTS,
        (BEFORE, AFTER),
        [1, -1, 1],
        (before, after),
        ([[" Paris", " the", " a"], ["    ", "\n", " "], [" 4", " four", " 5"]],
         [[" Paris", " Lyon", " a"], ["    ", "\n", " "], [" 4", " 5", " four"]]),
        (topk_before, topk_after),
        ({"label": "original", "perplexity": 12.34, "depth": 30, "parameters": 134515008, "program": "0-29"},
         {"label": "program 0-15,8-29", "perplexity": 13.5, "depth": 38, "parameters": 134515008, "program": "0-15,8-29"}),
        title="RYS 8:16 vs original · SmolLM2-135M-Instruct",
    )


def test_shows_both_sides_marks_divergence_and_selects(open_widget):
    view = open_widget(diff_widget())
    page = view.page
    cards = page.locator(".nm-diff-card")
    assert cards.count() == 3
    first = cards.nth(0)
    texts = first.locator(".nm-diff-text")
    assert texts.nth(0).inner_text() == " Paris. It is"
    assert texts.nth(1).inner_text() == " Paris, the city"
    assert first.locator(".nm-diff-first").count() == 2  # marked on both sides
    assert cards.nth(1).locator(".nm-diff-first").count() == 0
    assert cards.nth(2).locator(".nm-diff-end").count() == 1  # the after side stopped early
    assert page.locator(".nm-readout").first.inner_text() == "2 of 3 continuations changed"
    stats = page.locator(".nm-diff-stats").inner_text()
    assert "38" in stats and "+8" in stats and "134,515,008" in stats and "+1.16" in stats
    # the token whose log-prob fell most is the darkest (blue end of the diverging scale)
    shade = first.locator(".nm-diff-token").nth(1).evaluate("el => getComputedStyle(el).backgroundColor")
    assert shade == "rgb(33, 102, 172)"
    assert "Δ -2.5)" in first.locator(".nm-diff-token").nth(1).get_attribute("title")
    view.screenshot("-overview")

    cards.nth(2).click()
    assert view.model_state("selected") == 2
    topk = page.locator(".nm-diff-topk")
    assert topk.count() == 2
    assert "·four" in topk.nth(0).inner_text() and "70%" in topk.nth(1).inner_text()
    cards.nth(0).focus()
    page.keyboard.press("Enter")
    assert view.model_state("selected") == 0
    view.screenshot("-selected")


@pytest.mark.parametrize("theme", ["dark", "os-dark"])
def test_dark_theme_is_legible(open_widget, theme):
    view = open_widget(diff_widget(), theme=theme)
    colour = view.page.locator(".nm-diff-text").first.evaluate("el => getComputedStyle(el).color")
    red, green, blue = (int(part) for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    assert 0.2126 * red + 0.7152 * green + 0.0722 * blue > 180, colour
    view.screenshot()


def test_a_streaming_diff_marks_rows_still_generating_until_they_finish(open_widget):
    widget = diff_widget()
    widget.pending = [0]
    view = open_widget(widget)
    page = view.page
    cards = page.locator(".nm-diff-card")
    assert cards.nth(0).locator(".nm-diff-text").nth(1).inner_text() == " Paris, the city…"
    assert cards.nth(1).locator(".nm-diff-pending").count() == 0
    assert page.locator(".nm-readout").first.inner_text() == "2 of 3 continuations changed · generating 1 more…"
    page.evaluate("window.widgetModels[0].set('pending', [])")  # what the kernel's last update does
    assert page.locator(".nm-diff-pending").count() == 0
    assert page.locator(".nm-readout").first.inner_text() == "2 of 3 continuations changed"


def test_the_diff_exports_a_png_of_what_it_shows(open_widget):
    """The PNG button rasterises the view's HTML (an SVG foreignObject) in the real browser: a PNG of
    the view's size at 2x comes back, dark text on the light page, not a blank or tainted canvas."""
    import base64
    import io

    from PIL import Image

    view = open_widget(diff_widget())
    page = view.page
    page.evaluate("""() => {
        window.__downloads = [];
        HTMLAnchorElement.prototype.click = function click() { window.__downloads.push([this.download, this.href]); };
    }""")
    page.locator(".nm-export-png").click()
    page.wait_for_function("() => window.__downloads.length > 0", timeout=15_000)
    name, href = page.evaluate("() => window.__downloads[0]")
    assert name == "diff.png" and href.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1]))).convert("RGB")
    box = page.locator(".nm-diff").bounding_box()
    assert abs(image.width - 2 * (box["width"] + 12)) <= 4, (image.size, box)
    pixels = np.asarray(image)
    dark = (pixels.sum(axis=2) < 200).mean()  # text pixels
    assert 0.002 < dark < 0.5, dark
