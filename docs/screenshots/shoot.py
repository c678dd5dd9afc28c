"""Screenshots of the default views on the default model, light and dark, for docs/screenshots.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python docs/screenshots/shoot.py OUT_DIR [VIEW ...]

Renders each view's saved widget state in headless Chromium, offline, the way tests/browser does
(NEURO_MAGICS_BROWSER_ASSETS: the npm files those tests use).
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "tests" / "browser"), str(Path(__file__).resolve().parents[2] / "tests")]
from conftest import PAGE_TEMPLATE  # noqa: E402

ASSETS = Path(os.environ.get("NEURO_MAGICS_BROWSER_ASSETS", Path(__file__).resolve().parents[2] / "tests/browser/.assets"))


def views(subject) -> dict:
    """name -> a zero-argument function building the widget of one default view."""
    import neuro_magics as nm

    def scan_lens():
        return nm.scan(subject, "The capital of France is", lens=True).widget()

    def scan_norm():
        widget = nm.scan(subject, "The capital of France is Paris. It is known for").widget()
        widget.metric = "norm"
        return widget

    def attribution():
        return nm.attribute(subject, "The capital of France is", target=" Paris", foil=" London",
                            method=("saliency", "ig"), steps=8).widget()

    def diff():
        from neuro_magics.analyses.diffing import compare

        ablation = nm.ablate(subject, layers="0", install=False)
        return compare(subject, lambda: ablation.applied(subject), ["The capital of France is"],
                       max_new_tokens=8, label_after=ablation.kind).widget()

    def scatter():
        from neuro_magics.analyses.projection import demo_texts

        texts, labels = demo_texts()
        return nm.project(subject, texts, labels, steps="6,12,18", progress=False).widget()

    return {"scan_lens": scan_lens, "scan_norm": scan_norm, "attribution": attribution, "diff": diff, "scatter": scatter}


def main(out: Path, names: list[str]) -> None:
    from ipywidgets.embed import dependency_state, embed_minimal_html
    from playwright.sync_api import sync_playwright

    import neuro_magics as nm

    subject = nm.load_model()
    builders = views(subject)
    out.mkdir(parents=True, exist_ok=True)
    site = Path(tempfile.mkdtemp())
    (site / "assets").symlink_to(ASSETS, target_is_directory=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        for name in names or list(builders):
            widget = builders[name]()
            for theme in ("light", "dark"):
                page_name = f"{name}-{theme}"
                embed_minimal_html(site / f"{page_name}.html", views=[widget], state=dependency_state([widget], drop_defaults=False),
                                   title=page_name, drop_defaults=False, requirejs=False,
                                   embed_url="/assets/@jupyter-widgets/html-manager/dist/embed-amd.js",
                                   template=PAGE_TEMPLATE.format(body_class="jp-dark" if theme == "dark" else ""))
                page = browser.new_page(viewport={"width": 900, "height": 600}, device_scale_factor=1)
                page.goto(f"{base}/{page_name}.html")
                page.wait_for_selector(".nm-root", timeout=30_000)
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / f"{page_name}.png"), full_page=True)
                page.close()
                print("wrote", out / f"{page_name}.png")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
