"""LinesWidget in chromium: a probe's accuracy and control draw as lines in the shared palette,
hovering a step shows both values, rounded to what they mean."""

import numpy as np

from neuro_magics.analyses.probing import ProbeResult
from neuro_magics.widgets.colors import STOPS, rgb
from neuro_magics.widgets.views import probe_widget


def planted_probe() -> ProbeResult:
    folds = np.array([[0.5, 0.5], [0.75, 0.75], [1.0, 1.0]], dtype=np.float32)
    return ProbeResult(
        texts=["a"] * 8, labels=["x", "y"] * 4, classes=["x", "y"], steps=[2, 5, 9], blocks=[2, 5, 9],
        site="resid_pre", pooling="mean", probe_kind="logreg", fold_accuracy=folds, fold_control=folds[::-1] / 2,
        weights=np.zeros((3, 1, 4)), bias=np.zeros((3, 1)), class_means=np.zeros((3, 2, 4)), metadata={"model": "m"},
    )


def test_probe_chart_draws_both_series_and_hover_shows_exact_values(open_widget):
    view = open_widget(probe_widget(planted_probe()))
    page = view.page
    colours = page.evaluate(
        """() => {
            const canvas = document.querySelector(".nm-lines canvas");
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4) if (data[i + 3] === 255) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
            return [...seen];
        }"""
    )
    for colour in STOPS["categorical"][:2]:
        assert ",".join(str(int(c)) for c in rgb(colour)) in colours, colour
    box = page.locator(".nm-lines canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 13, box["y"] + box["height"] / 2)  # the last layer's column
    text = page.locator(".nm-tooltip").inner_text()
    assert "program step 9" in text and "logreg probe\t1" in text and "shuffled-label control\t0.25" in text
    view.screenshot()
