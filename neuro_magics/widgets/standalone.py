"""One HTML file that shows any of our anywidgets (or a box of them) offline, with no kernel and no network.

The page inlines each widget's bundled ESM (``neuro_magics/static/*.js``, once per bundle) and its synced state,
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
from ..core.results import register_view

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
<script type="application/json" id="nm-parts">{parts}</script>
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
const bundles = read("nm-esm");
const modules = {{}};
for (const [name, encoded] of Object.entries(bundles)) {{
  const source = new TextDecoder().decode(Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0)));
  const url = URL.createObjectURL(new Blob([source], {{ type: "text/javascript" }}));
  const widget = (await import(url)).default;
  modules[name] = typeof widget === "function" ? await widget() : widget;
}}
const host = document.getElementById("nm-widget");
for (const part of read("nm-parts")) {{
  const el = document.createElement("div");
  el.className = "nm-static-part";
  host.append(el);
  if (part.html !== undefined) {{
    el.innerHTML = part.html;
    continue;
  }}
  const state = revive(part.state);
  const model = {{
    get: (name) => state[name],
    set() {{}}, save_changes() {{}}, send() {{}}, on() {{}}, off() {{}},
  }};
  const definition = modules[part.bundle];
  await definition.initialize?.({{ model }});
  await definition.render({{ model, el }});
}}
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


def _parts(widget) -> list:
    """The widgets a page shows, in order: an anywidget itself, a box's children depth first, an
    HTML widget's markup; anything else (a button, a slider that drives the kernel) is left out."""
    if hasattr(widget, "_esm"):
        return [widget]
    if hasattr(widget, "children"):
        return [part for child in widget.children for part in _parts(child)]
    if isinstance(getattr(widget, "value", None), str) and type(widget).__name__ == "HTML":
        return [widget]
    return []


def _bundle_source(esm) -> str:
    """A widget's ESM as text (``_esm`` is a bundle path or the source itself)."""
    is_path = isinstance(esm, Path) or (isinstance(esm, str) and "\n" not in esm and esm.endswith(".js")
                                        and Path(esm).is_file())
    return Path(esm).read_text(encoding="utf-8") if is_path else str(esm)


def standalone_html(widget, *, title: str = "neuro_magics", note: str = "") -> str:
    """The page for one anywidget, or a box of them (each drawn in turn, each bundle inlined once)."""
    parts, bundles = [], {}
    for part in _parts(widget):
        if not hasattr(part, "_esm"):
            parts.append({"html": part.value})
            continue
        source = _bundle_source(part._esm)
        name = bundles.setdefault(source, f"bundle{len(bundles)}")
        state = {key: value for key, value in part.get_state().items()
                 if not key.startswith("_") and key not in ("layout", "tabbable", "tooltip", "comm")}
        parts.append({"bundle": name, "state": _jsonable(state)})
    if not any("bundle" in part for part in parts):
        raise NeuroMagicsError(f"{type(widget).__name__} holds no neuro_magics widget to write as HTML.")
    return _PAGE.format(
        title=html.escape(title),
        note=html.escape(note),
        parts=_script_json(parts),
        esm=_script_json({name: base64.b64encode(source.encode("utf-8")).decode("ascii")
                          for source, name in bundles.items()}),
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


def result_html(result, path: str | Path, *, overwrite: bool = False) -> Path:
    """Any result as one offline HTML file of its widget (what a kind without a page of its own gets)."""
    path = html_target(path, overwrite=overwrite)
    widget = result.widget()
    try:
        return write_standalone(widget, path, title=f"{result.kind} · {result.metadata.get('model', '')}",
                                note=f"A static copy of a neuro_magics {result.kind} result: hover and switch "
                                     "views; what runs the model needs a live notebook.", overwrite=overwrite)
    finally:
        widget.close()


register_view("*", html=result_html)
