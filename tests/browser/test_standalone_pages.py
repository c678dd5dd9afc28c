"""result.to_html for two kinds (a probe's lines, a projection's scatter) opened from disk in headless
Chromium: each widget draws its data, and the page asks for nothing beyond the file itself."""

from __future__ import annotations

import numpy as np

from neuro_magics.analyses.probing import ProbeResult
from neuro_magics.analyses.projection import ProjectionResult
from neuro_magics.widgets.colors import STOPS, rgb


def planted_probe() -> ProbeResult:
    folds = np.array([[0.5, 0.5], [0.75, 0.75], [1.0, 1.0]], dtype=np.float32)
    return ProbeResult(
        texts=["a"] * 8, labels=["x", "y"] * 4, classes=["x", "y"], steps=[2, 5, 9], blocks=[2, 5, 9],
        site="resid_pre", pooling="mean", probe_kind="logreg", fold_accuracy=folds, fold_control=folds[::-1] / 2,
        weights=np.zeros((3, 1, 4)), bias=np.zeros((3, 1)), class_means=np.zeros((3, 2, 4)), metadata={"model": "m"},
    )


def planted_projection() -> ProjectionResult:
    rng = np.random.default_rng(3)
    coords = rng.normal(size=(2, 60, 2)).astype(np.float32) * [3.0, 1.0]
    words = [f" w{k}" for k in range(6)]
    return ProjectionResult(
        texts=["".join(words)] * 10, labels=["a"] * 3 + ["b"] * 7, text_tokens=[words] * 10,
        text_index=np.repeat(np.arange(10), 6), position=np.tile(np.arange(6), 10), steps=[3, 6], blocks=[3, 6],
        site="resid_post", unit="token", method="pca", coords=coords, explained=np.array([[0.4, 0.1], [0.3, 0.2]]),
        metadata={"model": "planted"},
    )


def painted_colours(page, selector: str) -> set[str]:
    return set(page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length; i += 4) if (data[i + 3] === 255) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
            return [...seen];
        }""", selector))


def test_two_kinds_of_result_draw_from_their_html_files_offline(browser, tmp_path):
    probe_page = planted_probe().to_html(tmp_path / "probe.html")
    projection = planted_projection()
    scatter_page = projection.to_html(tmp_path / "projection.html")
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(probe_page.as_uri())
        page.wait_for_selector("body[data-rendered='true']", timeout=20_000)
        colours = painted_colours(page, ".nm-lines canvas")
        for colour in STOPS["categorical"][:2]:  # the probe and its control, each in its own colour
            assert ",".join(str(int(c)) for c in rgb(colour)) in colours, colour

        page.goto(scatter_page.as_uri())
        page.wait_for_selector("body[data-rendered='true']", timeout=20_000)
        colours = painted_colours(page, ".nm-points")
        for colour in STOPS["categorical"][:2]:  # label b (7 texts) first, then a
            assert ",".join(str(int(c)) for c in rgb(colour)) in colours, colour
        assert page.locator(".nm-axis-x").inner_text().startswith("PC1: ")
        assert "b (42)" in page.locator(".nm-legend").inner_text()
        assert not errors, errors
        assert {url for url in requests if not url.startswith("blob:")} == {probe_page.as_uri(), scatter_page.as_uri()}
    finally:
        context.close()
