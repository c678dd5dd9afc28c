"""HeatmapWidget in chromium: draws, hover shows exact values, click selects and syncs, metrics switch, themes."""

import numpy as np
import pytest

from neuro_magics.widgets import HeatmapWidget

ROWS, COLS = 6, 8


def scan_widget(title="logit lens"):
    rng = np.random.default_rng(3)
    accuracy = rng.random((ROWS, COLS), dtype=np.float32)
    accuracy[4, 6] = np.nan
    delta = rng.normal(size=(ROWS, COLS)).astype(np.float32)
    k = 3
    return HeatmapWidget(
        np.stack([accuracy, delta]),
        [
            {"name": "acc", "label": "accuracy", "scale": "sequential", "fmt": ".2f"},
            {"name": "delta", "label": "Δ loss", "scale": "diverging", "center": 0.0, "fmt": "+.3f"},
        ],
        [f"L{i}" for i in range(ROWS)],
        ["<s>", " The", " cat", " sat", "\n", " on", " the", " mat"],
        row_title="layer",
        col_title="token",
        title=title,
        marks=[{"row": 0, "col": 0, "label": "baseline"}],
        detail_token_ids=rng.integers(0, 4, (ROWS, COLS, k)),
        detail_probs=np.full((ROWS, COLS, k), 0.1),
        detail_vocab=[" Paris", "\n", " the", " cat"],
    )


def cell_center(page, row, col, rows=ROWS, cols=COLS):
    box = page.locator(".nm-overlay").first.bounding_box()
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def test_draws_hovers_selects_and_switches_metric(open_widget):
    widget = scan_widget()
    view = open_widget(widget)
    page = view.page
    grid = view.canvas_stats(".nm-grid")
    assert grid["painted"] > 1000 and grid["colours"] > 20, grid
    assert page.locator(".nm-title").inner_text() == "logit lens"

    x, y = cell_center(page, 2, 3)
    page.mouse.move(x, y)
    tooltip = page.locator(".nm-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "layer L2 · token ·sat" in text and "␣" not in text
    assert f"{float(f'{widget.values[0, 2, 3]:.3g}'):g}" in text  # rounded to 3 significant digits
    assert f"{float(f'{widget.values[1, 2, 3]:.3g}'):g}" in text
    token = widget.detail_vocab[widget.detail_token_ids[2, 3, 0]].replace(" ", "·").replace("\n", "\\n")
    assert token in text and "0.1" in text
    view.screenshot("-hover")

    page.mouse.click(x, y)
    assert view.root().get_attribute("data-selected") == "2,3"
    assert view.model_state("selected") == [2, 3]
    assert "·sat" in page.locator(".nm-readout").inner_text()

    page.mouse.move(*cell_center(page, 4, 6))
    assert "–" in tooltip.inner_text()  # an undefined cell

    page.select_option("select.nm-metric", "delta")
    assert view.model_state("metric") == "delta"
    switched = view.canvas_stats(".nm-grid")
    assert switched["hash"] != grid["hash"]
    assert "centre +0.000" in page.locator(".nm-legend").inner_text()
    view.screenshot("-delta")


def test_tooltip_template_for_brain_scan(open_widget):
    n = 5
    score = np.full((n, n + 1), np.nan, dtype=np.float32)
    block = np.zeros((n, n + 1), dtype=np.float32)
    for i in range(n):
        for j in range(i + 1, n + 1):
            score[i, j] = 0.5 + 0.01 * (j - i)
            block[i, j] = j - i
    widget = HeatmapWidget(
        score,
        [{"name": "score", "scale": "diverging", "center": 0.5}],
        [str(i) for i in range(n)],
        [str(j) for j in range(n + 1)],
        row_title="start i",
        col_title="end j",
        details={"block_size": block, "delta": score - 0.5},
        tooltip_template="config ({row_index}, {col_index}) · block {block_size:d} · Δ {delta:+.3f}",
        marks=[{"row": 1, "col": 4, "label": "best"}],
    )
    view = open_widget(widget)
    view.page.mouse.move(*cell_center(view.page, 1, 4, n, n + 1))
    tooltip = view.page.locator(".nm-tooltip")
    tooltip.wait_for(state="visible")
    assert "config (1, 4) · block 3 · Δ +0.030" in tooltip.inner_text()
    assert "best" in tooltip.inner_text()


@pytest.mark.parametrize("theme", ["dark", "os-dark"])
def test_dark_theme_uses_light_text(open_widget, theme):
    view = open_widget(scan_widget(), theme=theme)
    colour = view.page.evaluate("getComputedStyle(document.querySelector('.nm-root')).color")
    red, green, blue = (int(part) for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])
    assert 0.2126 * red + 0.7152 * green + 0.0722 * blue > 180, colour
    # Row labels end up in the light foreground. A widget rendered before it is attached to the
    # page draws once more when it gets its size (ResizeObserver), so wait for that frame.
    try:
        view.page.wait_for_function(
            """() => {
                const c = document.querySelector('.nm-row-axis');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 0; i < d.length; i += 4)
                    if (d[i + 3] && 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2] > 180) return true;
                return false;
            }""",
            timeout=5_000,
        )
    except Exception:
        pytest.fail(f"row labels never drawn in a light colour: {view.canvas_stats('.nm-row-axis')}")
    view.screenshot()


def test_tooltips_of_the_bottom_row_stay_inside_the_widget(open_widget):
    """A notebook's output area clips what overflows the widget: a tooltip of the bottom-right
    cell opens above and left of the pointer, inside the widget's box."""
    view = open_widget(scan_widget())
    page = view.page
    page.mouse.move(*cell_center(page, ROWS - 1, COLS - 1))
    tooltip = page.locator(".nm-tooltip")
    tooltip.wait_for(state="visible")
    inner, outer = tooltip.bounding_box(), view.root().bounding_box()
    assert inner["y"] >= outer["y"] - 1 and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1, (inner, outer)
    assert inner["x"] >= outer["x"] - 1 and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1, (inner, outer)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_diverging_neutral_is_the_page_background_in_the_dark(open_widget, theme):
    """A map of zeros on a diverging scale: near white in the light theme (the published RdBu
    centre, as the figures), the page's own background (#111111) in the dark one."""
    values = np.zeros((1, 4, 6), dtype=np.float32)
    values[0, 0, 0], values[0, 3, 5] = -1.0, 1.0  # the range, so zero is the centre
    view = open_widget(HeatmapWidget(values, [{"name": "delta", "scale": "diverging"}]), theme=theme)
    expected = (247, 247, 247) if theme == "light" else (17, 17, 17)
    centre = """() => {
        const canvas = document.querySelector('.nm-grid');
        const d = canvas.getContext('2d').getImageData(Math.floor(canvas.width / 2), Math.floor(canvas.height / 2), 1, 1).data;
        return [d[0], d[1], d[2]];
    }"""
    # A widget rendered before it is attached draws once more when it gets its size: wait for that frame.
    try:
        view.page.wait_for_function(
            f"() => ({centre})().every((c, i) => Math.abs(c - {list(expected)}[i]) <= 4)", timeout=5_000)
    except Exception:
        pytest.fail(f"centre pixel {view.page.evaluate(centre)}, expected about {expected}")
    view.screenshot()


def test_large_scan_stays_responsive(open_widget):
    rows, cols = 64, 1024
    values = np.sin(np.arange(rows * cols, dtype=np.float32) / 37).reshape(1, rows, cols)
    view = open_widget(HeatmapWidget(values, [{"name": "m", "scale": "diverging"}], col_labels=[f" w{i}" for i in range(cols)]))
    page = view.page
    assert page.locator(".nm-root *").count() < 80  # a canvas, not a node per cell
    scroller = page.locator(".nm-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")  # 1024 columns scroll
    # Timings are for bench/, not tests: here only that hovering and fitting work at this size.
    page.evaluate(
        """() => {
            const overlay = document.querySelector(".nm-overlay");
            const box = overlay.getBoundingClientRect();
            for (let i = 0; i < 100; i++) {
                overlay.dispatchEvent(new MouseEvent("mousemove", { clientX: box.left + 2 + i * 3, clientY: box.top + 2 + (i % 60) * 6, bubbles: true }));
            }
            document.querySelector(".nm-fit").click();
        }"""
    )
    assert not scroller.evaluate("el => el.scrollWidth > el.clientWidth + 1")  # fit width
    view.screenshot()


def test_several_widgets_on_one_page_are_independent(open_widget):
    view = open_widget(scan_widget(), scan_widget(title="second"))
    page = view.page
    second = page.locator(".nm-overlay").nth(1).bounding_box()
    page.mouse.click(second["x"] + 0.5 * second["width"] / COLS, second["y"] + 0.5 * second["height"] / ROWS)
    assert view.root(1).get_attribute("data-selected") == "0,0"
    assert view.root(0).get_attribute("data-selected") == ""
    assert view.model_state("selected", 1) == [0, 0] and view.model_state("selected", 0) == []
