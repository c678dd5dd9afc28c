"""The main job: execute the tour notebook on the default model, write an executed
copy and an HTML page of it (widgets included) under demo_notebooks/out/.

    python demo_notebooks/run_demo.py [NOTEBOOK ...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

HERE = Path(__file__).parent
OUT = HERE / "out"
ASSETS = HERE.parent / "tests" / "browser" / ".assets"
# The JS files a saved notebook page needs to draw its widgets, from npm (no CDN when viewed).
PAGE_ASSETS = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js": "requirejs/require.js",
    "https://unpkg.com/@jupyter-widgets/html-manager@*/dist/embed-amd.js": "@jupyter-widgets/html-manager/dist/embed-amd.js",
}
ANYWIDGET = "anywidget/dist/index.js"


def build_notebook(name: str, cells: list) -> Path:
    """Write demo_notebooks/NAME from ``cells`` (what every build_*.py does) and, unless the
    command line says --no-execute, execute it in place: nbval compares its tagged cells
    against the stored outputs."""
    from nbformat.v4 import new_notebook

    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    path = HERE / name
    nbformat.write(notebook, path)
    if "--no-execute" not in sys.argv:
        nbformat.write(execute(path), path)
    return path


def execute(path: Path, timeout: int = 1200, *, report: bool = False) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel; widget state is stored in the notebook. With
    ``report``, print one line per code cell as it finishes, so a long run is never silent."""
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    started = time.perf_counter()

    def cell_done(cell, cell_index, **_):
        if cell.cell_type != "code":
            return
        number = next(k for k, code_cell in enumerate(code_cells, 1) if code_cell is cell)
        first_line = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
        print(f"  cell {number}/{len(code_cells)} done at {time.perf_counter() - started:4.0f} s: {first_line}",
              flush=True)

    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
        store_widget_state=True,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not the kernel's "TCP without encryption" notice
        on_cell_executed=cell_done if report else None,
    ).execute()
    return notebook


def local_assets() -> Path | None:
    """The npm copies of the page's JS, fetched once if npm is available."""
    needed = [*PAGE_ASSETS.values(), ANYWIDGET]
    if not all((ASSETS / path).is_file() for path in needed) and shutil.which("npm"):
        subprocess.run(["bash", str(ASSETS.parent / "fetch_assets.sh")], capture_output=True, timeout=300)
    return ASSETS if all((ASSETS / path).is_file() for path in needed) else None


def write_html(notebook: nbformat.NotebookNode, page: Path) -> None:
    """nbconvert's page (without MathJax, our own template), pointed at local copies of its JS
    (copied beside it) so the widgets draw offline; without them the page falls back to the
    public CDNs."""
    exporter = HTMLExporter(extra_template_basedirs=[str(HERE / "templates")], template_name="offline")
    html, _ = exporter.from_notebook_node(notebook)
    assets = local_assets()
    if assets is not None:
        target = page.parent / "assets"
        for path in [*PAGE_ASSETS.values(), ANYWIDGET]:
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(assets / path, target / path)
        for url, path in PAGE_ASSETS.items():
            html = html.replace(url, f"assets/{path}")
        mapping = '<script>require.config({paths: {anywidget: "assets/anywidget/dist/index"}});</script>'
        html = html.replace("</script><script>", f"</script>{mapping}<script>", 1)
    page.write_text(html, encoding="utf-8")


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for name in names or ["01_tour.ipynb"]:
        source = HERE / name
        started = time.perf_counter()
        print(f"==> Running {source.name} on the default model (SmolLM2-135M-Instruct, CPU). The first run "
              "converts the model's GGUF weights once (about 45 s on 2 cores); the whole tour takes about "
              "1-2 minutes.", flush=True)
        notebook = execute(source, report=True)
        executed = OUT / source.name
        nbformat.write(notebook, executed)
        page = executed.with_suffix(".html")
        write_html(notebook, page)
        print(f"{source.name}: executed in {time.perf_counter() - started:.0f} s -> {executed} and {page}")


if __name__ == "__main__":
    main(sys.argv[1:])
