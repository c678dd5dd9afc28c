"""A saved, executed notebook shows its widgets without a kernel and without any CDN:
the page `make demo` writes (run_demo.write_html) is opened in chromium, offline."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo_notebooks"))

CELLS = [
    "import numpy as np\nfrom neuro_magics.widgets import HeatmapWidget, AttentionWidget",
    "HeatmapWidget(np.linspace(0, 1, 24, dtype=np.float32).reshape(1, 4, 6), col_labels=list('abcdef'))",
    "p = np.tril(np.ones((5, 5), np.float32)); p /= p.sum(-1, keepdims=True)\n"
    "AttentionWidget(np.broadcast_to(p, (2, 3, 5, 5)).copy(), tokens=list('vwxyz'))",
]


@pytest.fixture(scope="module")
def saved_page(tmp_path_factory, assets):
    from run_demo import execute, write_html

    folder = tmp_path_factory.mktemp("saved")
    source = folder / "widgets.ipynb"
    notebook = new_notebook(cells=[new_code_cell(c) for c in CELLS],
                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, source)
    write_html(execute(source, timeout=300), folder / "widgets.html")
    return folder


def test_saved_notebook_page_draws_its_widgets_offline(saved_page, browser):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(saved_page))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    context = browser.new_context(viewport={"width": 1200, "height": 1600})
    page = context.new_page()
    refused, errors = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def only_local(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:  # the page must load nothing from the network (no MathJax, no widget JS)
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto(f"{base}/widgets.html")
        page.wait_for_function("document.querySelectorAll('.nm-root canvas').length >= 2", timeout=30_000)
        painted = page.evaluate(
            """() => [...document.querySelectorAll('.nm-root canvas')].map(c => {
                if (!c.width || !c.height) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })"""
        )
        assert sum(1 for n in painted if n > 100) >= 2, painted
        assert not errors, errors
        assert not refused, refused
        page.screenshot(path=str(Path(__file__).resolve().parents[1] / "artifacts" / "saved-notebook-page.png"),
                        full_page=True)
    finally:
        context.close()
        server.shutdown()
        server.server_close()
