"""AttentionWidget in chromium: thumbnails draw, click zooms and syncs, hover shows exact weights, scores recolour."""

import numpy as np

from neuro_magics.widgets import AttentionWidget


def causal_patterns(n_layers, n_heads, n_tokens, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=2.0, size=(n_layers, n_heads, n_tokens, n_tokens))
    scores[..., np.triu_indices(n_tokens, 1)[0], np.triu_indices(n_tokens, 1)[1]] = -np.inf
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float16)


def explorer(n_layers=30, n_heads=9, n_tokens=64):
    patterns = causal_patterns(n_layers, n_heads, n_tokens)
    tokens = ["<s>", " The", " cat", "\n"] + [f" w{i}" for i in range(n_tokens - 4)]
    rng = np.random.default_rng(1)
    scores = {name: rng.random((n_layers, n_heads), dtype=np.float32) for name in ("entropy", "previous-token", "induction")}
    return AttentionWidget(patterns, tokens, [f"L{i}" for i in range(n_layers)], scores, n_kv_heads=3, title="attention")


def test_a_click_brings_the_zoom_into_view_in_a_short_window(open_widget):
    """In a window too short for grid and zoom, the zoom wraps below the grid: a click must scroll
    it into view, or it looks as if nothing happened."""
    view = open_widget(explorer(), viewport=(700, 420))
    page = view.page
    grid = page.locator(".nm-thumbs-overlay").bounding_box()
    page.mouse.click(grid["x"] + 60 + 4 * 52 + 22, grid["y"] + 16 + 0 * 68 + 22)
    page.wait_for_function(
        """() => {
            const box = document.querySelector(".nm-zoom").getBoundingClientRect();
            return box.top >= 0 && box.top < window.innerHeight - 40;
        }""",
        timeout=5_000,
    )


def test_thumbnails_click_zoom_hover_and_score(open_widget):
    widget = explorer()
    view = open_widget(widget)
    page = view.page
    assert page.locator(".nm-attn-zoom-title").inner_text().startswith("layer ")  # the zoom starts on a head
    assert view.canvas_stats(".nm-zoom")["painted"] > 10000
    thumbs = view.canvas_stats(".nm-thumbs")
    assert thumbs["painted"] > 10000 and thumbs["colours"] > 50, thumbs

    # layer 2, head 4: the overlay is the thumbnail canvas; tiles sit at 60 + head * 52, 16 + layer * 68 (css px)
    grid = page.locator(".nm-thumbs-overlay").bounding_box()
    page.evaluate(
        """([x, y]) => {
            const overlay = document.querySelector(".nm-thumbs-overlay");
            overlay.dispatchEvent(new MouseEvent("click", { clientX: x, clientY: y, bubbles: true }));
        }""",
        [grid["x"] + 60 + 4 * 52 + 22, grid["y"] + 16 + 2 * 68 + 22],
    )
    assert view.root().get_attribute("data-selected") == "2,4"
    assert view.model_state("selected") == [2, 4]
    assert page.locator(".nm-attn-zoom-title").inner_text() == "layer L2 · head 4 (kv head 1)"
    zoom = view.canvas_stats(".nm-zoom")
    assert zoom["painted"] > 10000, zoom

    box = page.locator(".nm-zoom-overlay").bounding_box()
    side = box["height"]
    label_width = box["width"] - side
    cell = side / 64
    page.mouse.move(box["x"] + label_width + 1.5 * cell, box["y"] + 3.5 * cell)  # query 3 ("\n"), key 1 (" The")
    tooltip = page.locator(".nm-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "\\n" in text and "·The" in text and "␣" not in text and "↵" not in text
    assert f"{float(f'{float(widget.patterns[2, 4, 3, 1]):.3g}'):g}" in text  # the weight to 3 significant digits
    view.screenshot("-zoom")

    # hovering token 2 of the text under the zoom shades each token up to it by head (2, 4)'s weight on it
    token = page.locator(".nm-attn-text .nm-attn-tok").nth(2)
    token.scroll_into_view_if_needed()
    box = token.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.locator(".nm-attn-text").get_attribute("data-query") == "2"
    shaded = page.locator(".nm-attn-text .nm-attn-tok").evaluate_all("spans => spans.map(s => s.style.background !== '')")
    assert shaded[:3] == [True] * 3 and not any(shaded[3:])
    strongest = page.locator(".nm-attn-text .nm-attn-tok").nth(int(widget.patterns[2, 4, 2, :3].argmax())).get_attribute("title")
    assert strongest.endswith(f"{float(f'{float(widget.patterns[2, 4, 2, :3].max()):.3g}'):g}")

    page.select_option("select.nm-score", "induction")
    assert view.model_state("score") == "induction"
    assert view.canvas_stats(".nm-thumbs")["hash"] != thumbs["hash"]

    page.select_option("select.nm-layer-from", "10")
    page.select_option("select.nm-layer-to", "12")
    assert view.model_state("layer_range") == [10, 12]
    assert view.canvas_stats(".nm-thumbs")["height"] < thumbs["height"] / 5


def test_hover_on_thumbnail_lists_scores_and_kv_head(open_widget):
    view = open_widget(explorer(4, 6, 12))
    grid = view.page.locator(".nm-thumbs-overlay").bounding_box()
    view.page.mouse.move(grid["x"] + 60 + 5 * 52 + 20, grid["y"] + 16 + 1 * 68 + 20)
    tooltip = view.page.locator(".nm-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "layer L1 · head 5" in text and "kv head" in text and "induction" in text


def test_dark_theme(open_widget):
    view = open_widget(explorer(6, 6, 16), theme="dark")
    grid = view.page.locator(".nm-thumbs-overlay").bounding_box()
    view.page.mouse.click(grid["x"] + 60 + 22, grid["y"] + 16 + 22)
    colour = view.page.evaluate("getComputedStyle(document.querySelector('.nm-root')).color")
    red, green, blue = (int(part) for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    assert 0.2126 * red + 0.7152 * green + 0.0722 * blue > 180, colour
    assert view.canvas_stats(".nm-zoom")["brightest"] > 180  # token labels in the light foreground
    view.screenshot()
