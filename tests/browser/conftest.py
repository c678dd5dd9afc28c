"""Real-browser widget tests: embed a widget's saved state in a standalone page, serve it on
127.0.0.1, drive Debian's chromium through playwright. Everything is offline: the three JS
files the page needs come from npm once (fetch_assets.sh) and every other request is refused.
Without chromium, playwright or the assets these tests skip, and fail under ``make test``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from required_tools import missing_tool

HERE = Path(__file__).resolve().parent
ASSETS = Path(os.environ.get("NEURO_MAGICS_BROWSER_ASSETS", HERE / ".assets"))
ARTIFACTS = HERE.parent / "artifacts"
REQUIRED_ASSETS = (
    "requirejs/require.js",
    "anywidget/dist/index.js",
    "@jupyter-widgets/html-manager/dist/embed-amd.js",
)

# Dark theme the way JupyterLab's dark theme sets it: CSS variables on the body.
PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<link rel="icon" href="data:,">
<title>{{title}}</title>
<style>
  body {{{{ margin: 16px; font-family: sans-serif; }}}}
  body.jp-dark {{{{
    background: #111111; color: #e0e0e0;
    --jp-layout-color0: #111111; --jp-layout-color1: #1c1c1c; --jp-ui-font-color0: #f0f0f0;
    --jp-ui-font-color2: #b0b0b0; --jp-border-color2: #555555; --jp-brand-color1: #64b5f6;
  }}}}
</style>
<script src="/assets/requirejs/require.js"></script>
<script>
  // Map "anywidget" to the local dist and record each model so tests can read synced traits.
  require.config({{{{ paths: {{{{ "anywidget-dist": "/assets/anywidget/dist/index" }}}} }}}});
  define("anywidget", ["anywidget-dist"], function (dist) {{{{
    class RecordedModel extends dist.AnyModel {{{{
      initialize(...args) {{{{
        super.initialize(...args);
        (window.widgetModels = window.widgetModels || []).push(this);
      }}}}
    }}}}
    return Object.assign({{{{}}}}, dist, {{{{ AnyModel: RecordedModel }}}});
  }}}});
</script>
</head>
<body class="{body_class}">
{{snippet}}
</body>
</html>
"""


def _assets_present() -> bool:
    return all((ASSETS / path).is_file() for path in REQUIRED_ASSETS)


@pytest.fixture(scope="session")
def assets() -> Path:
    """The npm files the page loads; fetched on first use when npm can reach its registry."""
    if not _assets_present() and shutil.which("npm"):
        subprocess.run(["bash", str(HERE / "fetch_assets.sh")], capture_output=True, text=True, timeout=300)
    if not _assets_present():
        missing_tool(f"browser JS assets missing in {ASSETS} and could not be fetched: run tests/browser/fetch_assets.sh")
    return ASSETS


@pytest.fixture(scope="session")
def site(tmp_path_factory, assets):
    """Static server on 127.0.0.1 for the generated pages (under /) and the npm assets (under /assets)."""
    root = tmp_path_factory.mktemp("site")
    (root / "assets").symlink_to(assets, target_is_directory=True)

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class WidgetPage:
    """One widget embedded in a served page, with the page's errors and refused requests recorded."""

    def __init__(self, page, name: str):
        self.page = page
        self.name = name
        self.errors: list[str] = []
        self.refused: list[str] = []

    def root(self, index: int = 0):
        return self.page.locator(".nm-root").nth(index)

    def model_state(self, trait: str, index: int = 0):
        return self.page.evaluate(f"window.widgetModels[{index}].get({trait!r})")

    def canvas_stats(self, selector: str) -> dict:
        """Pixel summary of a canvas: painted (non-transparent) pixels, distinct colours, a digest, brightest pixel."""
        return self.page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector);
                const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0, brightest = 0, hash = 0;
                const colours = new Set();
                for (let i = 0; i < data.length; i += 4) {
                    if (data[i + 3] === 0) continue;
                    painted++;
                    colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
                    brightest = Math.max(brightest, 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2]);
                    hash = (hash * 31 + data[i] * 7 + data[i + 1] * 3 + data[i + 2]) >>> 0;
                }
                return { painted, colours: colours.size, hash, brightest, width: canvas.width, height: canvas.height };
            }""",
            selector,
        )

    def screenshot(self, suffix: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}{suffix}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_widget(site, browser, request):
    """open_widget(widget, theme="light"|"dark"|"os-dark") -> WidgetPage, rendered and checked for errors at teardown."""
    from ipywidgets.embed import dependency_state, embed_minimal_html

    root, base_url = site
    opened: list[WidgetPage] = []

    def open_page(*widgets, theme: str = "light", viewport=(1100, 900)) -> WidgetPage:
        name = f"{request.node.name}-{theme}".replace("[", "-").replace("]", "").replace("/", "_")
        embed_minimal_html(
            root / f"{name}.html",
            views=list(widgets),
            state=dependency_state(list(widgets), drop_defaults=False),  # only these widgets, not every live one
            title=name,
            drop_defaults=False,
            requirejs=False,
            embed_url="/assets/@jupyter-widgets/html-manager/dist/embed-amd.js",
            template=PAGE_TEMPLATE.format(body_class="jp-dark" if theme == "dark" else ""),
        )
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            device_scale_factor=2,
            color_scheme="dark" if theme == "os-dark" else "light",
        )
        page = context.new_page()
        widget_page = WidgetPage(page, name)
        page.on("console", lambda message: message.type == "error" and widget_page.errors.append(message.text))
        page.on("pageerror", lambda error: widget_page.errors.append(str(error)))

        def only_local(route):
            if route.request.url.startswith(base_url):
                route.continue_()
            else:
                widget_page.refused.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        opened.append(widget_page)
        page.goto(f"{base_url}/{name}.html")
        rendered = f"document.querySelectorAll('.nm-root').length === {len(widgets)} && (window.widgetModels || []).length === {len(widgets)}"
        try:
            page.wait_for_function(rendered, timeout=30_000)
        except Exception as error:  # a render failure shows up as console errors: report those
            pytest.fail(f"widgets did not render: {error.__class__.__name__}; console errors: {widget_page.errors}")
        return widget_page

    yield open_page
    for widget_page in opened:
        errors, refused = widget_page.errors, widget_page.refused
        widget_page.page.context.close()
        assert not errors, f"console errors: {errors}"
        assert not refused, f"requests outside 127.0.0.1: {refused}"
