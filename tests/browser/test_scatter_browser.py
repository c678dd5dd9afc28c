"""ScatterWidget in chromium: 100k points draw, hover shows a token in its context, a dragged box
selects exactly the points drawn inside it and the indices reach the Python result."""

import numpy as np

from neuro_magics.analyses.projection import ProjectionResult
from neuro_magics.widgets.colors import STOPS, rgb
from neuro_magics.widgets.views import projection_widget

N_POINTS = 100_000
GROUP = 400  # the planted group's points: 0..GROUP-1


def planted_projection() -> ProjectionResult:
    """A planted group in its own corner at every layer (label "a"), the rest elsewhere (label "b").
    Texts are 10 tokens each, so every point has a context."""
    rng = np.random.default_rng(7)
    coords = np.empty((3, N_POINTS, 2), dtype=np.float32)
    for layer in range(3):
        coords[layer, :GROUP] = rng.normal(size=(GROUP, 2)) * 0.3 + [-10 + layer, 8]
        coords[layer, GROUP:] = rng.normal(size=(N_POINTS - GROUP, 2)) * 2 + [5, -3]
    n_texts = N_POINTS // 10
    words = [f" w{k}" for k in range(10)]
    return ProjectionResult(
        texts=["".join(words)] * n_texts, labels=["a"] * (GROUP // 10) + ["b"] * (n_texts - GROUP // 10),
        text_tokens=[words] * n_texts, text_index=np.repeat(np.arange(n_texts), 10),
        position=np.tile(np.arange(10), n_texts), steps=[4, 8, 12], blocks=[4, 8, 12], site="resid_post",
        unit="token", method="pca", coords=coords, explained=np.zeros((3, 2)), metadata={"model": "planted"},
    )


def painted_box(view, colour: str) -> tuple[float, float, float, float]:
    """CSS-pixel bounding box (page coordinates) of the canvas pixels painted exactly ``colour``."""
    r, g, b = rgb(colour)
    box = view.page.evaluate(
        """([r, g, b]) => {
            const canvas = document.querySelector(".nm-points");
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
            for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
                const o = (y * width + x) * 4;
                if (data[o + 3] === 255 && data[o] === r && data[o + 1] === g && data[o + 2] === b) {
                    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
                }
            }
            const rect = canvas.getBoundingClientRect();
            const scale = rect.width / width;
            return [rect.left + x0 * scale, rect.top + y0 * scale, rect.left + (x1 + 1) * scale, rect.top + (y1 + 1) * scale];
        }""",
        [int(r), int(g), int(b)],
    )
    assert box[2] > box[0], f"no pixel painted {colour}"
    return tuple(box)


def test_box_selection_reaches_python_as_the_indices_of_the_points_inside(open_widget):
    """Oracle: the planted group, found by its colour in the canvas's own pixels (label "a", the less
    frequent of two, gets the second categorical colour); a box just around those pixels must select exactly indices
    0..GROUP-1, and the Python result must hold them once the front end's state is applied."""
    result = planted_projection()
    widget = projection_widget(result)
    view = open_widget(widget)
    page = view.page
    stats = view.canvas_stats(".nm-points")
    assert stats["painted"] > 20_000, stats
    assert "a (400)" in page.locator(".nm-legend").inner_text()

    left, top, right, bottom = painted_box(view, STOPS["categorical"][1])
    page.mouse.move(left - 4, top - 4)
    page.mouse.down()
    page.mouse.move((left + right) / 2, (top + bottom) / 2, steps=3)
    page.mouse.move(right + 4, bottom + 4, steps=3)
    page.mouse.up()
    selected = view.model_state("selected")
    assert selected == list(range(GROUP))
    assert "400 selected" in page.locator(".nm-readout").last.inner_text()
    widget.set_state({"selected": selected})  # what the kernel's comm handler does with the front end's update
    assert result.selected == list(range(GROUP))
    view.screenshot("-selected")

    # The next layer: the group moved but is still drawn where its points are, the selection kept.
    page.locator("input[type=range]").fill("1")
    assert view.model_state("layer") == 1
    assert view.canvas_stats(".nm-points")["hash"] != stats["hash"]


def test_hover_shows_the_token_in_its_context_with_label_and_layer(open_widget):
    result = planted_projection()
    view = open_widget(projection_widget(result))
    page = view.page
    left, top, right, bottom = painted_box(view, STOPS["categorical"][1])
    tooltip = page.locator(".nm-tooltip")
    for step in range(40):  # sweep across the group until a point is under the pointer
        page.mouse.move(left + (right - left) * step / 40, (top + bottom) / 2)
        if tooltip.is_visible():
            break
    text = tooltip.inner_text()
    assert "label a" in text and "layer 4" in text
    # the token as a label (a dot marks its leading space), its neighbours as text with real spaces
    assert "[·w" in text and " w" in text.split("[")[0] + text.split("]")[-1].split("\n")[0]
    view.screenshot("-hover")


def test_a_layer_switch_of_100k_points_is_fast(open_widget):
    """Smoothness, not a benchmark: switching layers (recompute positions, index, repaint) must stay
    well under a frame budget of a few frames on this 2-core machine."""
    view = open_widget(projection_widget(planted_projection()))
    elapsed = view.page.evaluate(
        """() => {
            const model = window.widgetModels[0];
            const start = performance.now();
            for (let k = 0; k < 6; k++) model.set("layer", k % 3);
            return (performance.now() - start) / 6;
        }"""
    )
    assert elapsed < 150, f"{elapsed:.0f} ms per layer switch"


def test_on_a_dark_page_unselected_points_stay_visible_search_and_neighbours_answer(open_widget):
    """Oracles: the unselected colour is a third of label b's colour over the page's own background
    (computed here), and differs from that background; "w3" is the token of one point in ten; the
    planted group lies alone in its corner, so a clicked member's eight nearest points are members."""
    view = open_widget(projection_widget(planted_projection()), theme="dark")
    page = view.page
    left, top, right, bottom = painted_box(view, STOPS["categorical"][1])
    page.mouse.move(left - 4, top - 4)
    page.mouse.down()
    page.mouse.move(right + 4, bottom + 4, steps=3)
    page.mouse.up()
    assert view.model_state("selected") == list(range(GROUP))
    background = page.evaluate("() => getComputedStyle(document.querySelector('.nm-root')).getPropertyValue('--nm-bg').trim()")
    bg = rgb(background) if background.startswith("#") else [int(v) for v in background[4:-1].split(",")[:3]]
    assert sum(bg) < 3 * 80, background  # really a dark page
    dimmed = [round(0.35 * c + 0.65 * b) for c, b in zip(rgb(STOPS["categorical"][0]), bg)]
    assert max(abs(d - b) for d, b in zip(dimmed, bg)) > 40
    painted_box(view, "#%02x%02x%02x" % tuple(dimmed))  # fails when no pixel has the dimmed colour
    view.screenshot("-dark-selected")

    page.locator(".nm-search").fill("w3")
    assert page.locator(".nm-search-readout").inner_text() == f"{N_POINTS // 10} matches"

    page.mouse.click((left + right) / 2, (top + bottom) / 2)
    page.wait_for_selector(".nm-neighbours li")
    listed = [int(text.rsplit("point ", 1)[1]) for text in page.locator(".nm-neighbours li").all_inner_texts()]
    assert len(listed) == 8 and all(i < GROUP for i in listed), listed
