"""Every demo notebook runs top to bottom in a fresh kernel.

nbval (in the test command) checks the tagged outputs but lets a cell that raised
UsageError pass; nbclient fails on any error, so both run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "demo_notebooks").glob("*.ipynb"))
sys.path.insert(0, str(Path(__file__).parent.parent / "demo_notebooks"))


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_without_errors(path):
    from run_demo import execute

    notebook = execute(path, timeout=900)
    errors = [
        output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"
    ]
    assert not errors, errors[0]["evalue"] if errors else ""
