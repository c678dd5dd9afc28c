"""The colour chromium paints a patching cell with equals the colour the plotly figure gives that value."""

import numpy as np

from test_widget_colors import colour_at, diverging_scale, is_blue, is_red, patch_result


def pixel(page, row: int, col: int, rows: int, cols: int) -> np.ndarray:
    """RGB of the grid canvas near the lower-left corner of cell (row, col): its centre holds the
    value written in the cell."""
    box = page.locator(".nm-overlay").first.bounding_box()
    x, y = (col + 0.12) * box["width"] / cols, (row + 0.88) * box["height"] / rows
    return np.array(page.evaluate(
        """([x, y]) => {
            const canvas = document.querySelector('.nm-grid');
            const scale = canvas.width / canvas.getBoundingClientRect().width;
            return Array.from(canvas.getContext('2d').getImageData(Math.floor(x * scale), Math.floor(y * scale), 1, 1).data.slice(0, 3));
        }""",
        [x, y],
    ), dtype=float)


def test_widget_cells_have_the_figure_colours(open_widget):
    result = patch_result()
    view = open_widget(result.widget().heatmap)
    scale, low, high = diverging_scale(result.figure())
    rows, cols = result.effect.shape
    for row, col in np.ndindex(rows, cols):
        value = float(result.effect[row, col])
        if np.isnan(value):
            continue
        painted = pixel(view.page, row, col, rows, cols)
        np.testing.assert_allclose(painted, colour_at(scale, low, high, value), atol=2, err_msg=f"cell {row},{col} = {value}")
    assert is_red(pixel(view.page, 1, 2, rows, cols)) and is_blue(pixel(view.page, 0, 0, rows, cols))
    view.screenshot()
