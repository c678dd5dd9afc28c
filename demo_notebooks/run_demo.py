"""The main job: execute the tour notebook on the default model, write an executed
copy and an HTML page of it (widgets included) under demo_notebooks/out/.

    python demo_notebooks/run_demo.py [NOTEBOOK ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

HERE = Path(__file__).parent
OUT = HERE / "out"


def execute(path: Path, timeout: int = 1200) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel; widget state is stored in the notebook."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
        store_widget_state=True,
    ).execute()
    return notebook


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for name in names or ["01_tour.ipynb"]:
        source = HERE / name
        started = time.perf_counter()
        notebook = execute(source)
        executed = OUT / source.name
        nbformat.write(notebook, executed)
        html, _ = HTMLExporter().from_notebook_node(notebook)
        page = executed.with_suffix(".html")
        page.write_text(html, encoding="utf-8")
        print(f"{source.name}: executed in {time.perf_counter() - started:.0f} s -> {executed} and {page}")


if __name__ == "__main__":
    main(sys.argv[1:])
