"""One HTML file that shows any of our anywidgets offline, with no kernel and no network.

The page inlines the widget's bundled ESM (``neuro_magics/static/*.js``) and its synced state,
binary buffers included (base64, decoded into DataViews where ipywidgets would put them),
and a tiny host that hands the widget's ``render({model, el})`` a read-only model: ``get``
reads the state, ``on`` / ``off`` / ``set`` / ``save_changes`` / ``send`` do nothing. The
module is imported from a ``blob:`` URL made in the page, so nothing is fetched: the file
opens from disk (``file://``), by e-mail or on a machine without Python.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..core.errors import NeuroMagicsError
from ..core.files import replace_file_text
from ..core.paths import check_file_target, user_path

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>body {{ margin: 16px; font-family: system-ui, sans-serif; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #1e1e1e; color: #e8eaed; }} }}
.nm-static-note {{ font-size: 12px; opacity: 0.7; margin-bottom: 8px; }}</style>
</head>
<body>
<div class="nm-static-note">{note}</div>
<div id="nm-widget"></div>
<script type="application/json" id="nm-state">{state}</script>
<script type="application/json" id="nm-esm">{esm}</script>
<script type="module">
const read = (id) => JSON.parse(document.getElementById(id).textContent);
function revive(value) {{
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {{
    if (typeof value.__nm_base64__ === "string") {{
      const bytes = Uint8Array.from(atob(value.__nm_base64__), (c) => c.charCodeAt(0));
      return new DataView(bytes.buffer);
    }}
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }}
  return value;
}}
const state = revive(read("nm-state"));
const source = new TextDecoder().decode(Uint8Array.from(atob(read("nm-esm")), (c) => c.charCodeAt(0)));
const url = URL.createObjectURL(new Blob([source], {{ type: "text/javascript" }}));
const widget = (await import(url)).default;
const model = {{
  get: (name) => state[name],
  set() {{}}, save_changes() {{}}, send() {{}}, on() {{}}, off() {{}},
}};
const el = document.getElementById("nm-widget");
const definition = typeof widget === "function" ? await widget() : widget;
await definition.initialize?.({{ model }});
await definition.render({{ model, el }});
document.body.dataset.rendered = "true";
</script>
</body>
</html>
"""


def _jsonable(value: Any) -> Any:
    """Widget state with its buffers as ``{"__nm_base64__": ...}`` (revived as DataViews)."""
    if isinstance(value, (memoryview, bytes, bytearray)):
        return {"__nm_base64__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def standalone_html(widget, *, title: str = "neuro_magics", note: str = "") -> str:
    """The page for one anywidget (its ``_esm`` a bundle path or source text)."""
    esm = widget._esm
    source = Path(esm).read_text(encoding="utf-8") if isinstance(esm, Path) or (
        isinstance(esm, str) and "\n" not in esm and esm.endswith(".js") and Path(esm).is_file()) else str(esm)
    state = {name: value for name, value in widget.get_state().items()
             if not name.startswith("_") and name not in ("layout", "tabbable", "tooltip", "comm")}
    return _PAGE.format(
        title=html.escape(title),
        note=html.escape(note),
        state=_script_json(_jsonable(state)),
        esm=_script_json(base64.b64encode(source.encode("utf-8")).decode("ascii")),
    )


def html_target(path: str | Path, *, overwrite: bool = False) -> Path:
    """Where ``write_standalone`` would write (``.html`` added if missing), checked writable now,
    so a magic can refuse a bad path before any work."""
    path = user_path(path, "HTML report")
    if path.suffix.lower() not in (".html", ".htm"):
        path = path.with_name(path.name + ".html")
    check_file_target(path, "HTML report", overwrite=overwrite)
    return path


def write_standalone(widget, path: str | Path, *, title: str = "neuro_magics", note: str = "",
                     overwrite: bool = False) -> Path:
    """Write ``standalone_html`` to ``path``; refuses to overwrite a file unasked, and replaces
    one only once the new page is complete."""
    path = html_target(path, overwrite=overwrite)
    try:
        replace_file_text(path, standalone_html(widget, title=title, note=note))
    except OSError as error:
        raise NeuroMagicsError(f"Could not write {str(path)!r}: {error.strerror or error}.") from None
    return path
