"""Widget buttons that act on the model, clicked in a real front end (JupyterLab 4 and Notebook 7)
with a live kernel: a checkup finding's action installs its fix or ablation and shows the diff,
the SAE dashboard's steer button installs a steering vector with the coefficient typed in the
page, and a click while a cell runs waits ("queued") until the cell ends.

Oracle: the kernel's own ``m.interventions``, printed by a later cell, holds the planted finding's
intervention kind (and the typed coefficient); a tiny random Llama with planted anomalies (as in
tests/test_checkup.py: a massive embedding dim at the first token, a dead MLP neuron) makes the
findings certain, and keeps each test to seconds of kernel work."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from test_jupyterlab import FRONT_END_NOISE, cell_output, run_all_cells, run_cell

pytestmark = pytest.mark.live

TESTS = Path(__file__).resolve().parents[1]
SETUP = f"""import sys
sys.path.insert(0, {str(TESTS)!r})
import torch
import neuro_magics as nm
from tiny_models import tiny_model, tiny_tokenizer

model, tokenizer = tiny_model("llama"), tiny_tokenizer()
with torch.no_grad():
    model.model.embed_tokens.weight[tokenizer.convert_tokens_to_ids("T"), 5] = 400.0  # massive dim 5
    model.model.layers[1].mlp.gate_proj.weight[17] = 0.0  # dead neuron 17 of layer 1
m = nm.Subject(model, tokenizer, name="tiny-llama")
get_ipython().neuro_magics_session.subject = m  # every cell now holds m's lock, as after %load_model
TEXTS = [f"The cat {{i}} sat on the mat while {{i * 7}} dogs ran home." for i in range(30)]"""
KINDS = 'print("KINDS", [(i.kind, i.arguments.get("coef")) for i in m.interventions])'
BUSY = ("import time\nbefore = [i.kind for i in m.interventions]\ntime.sleep(8 if before else 0)\n"
        "print('SAW', before, [i.kind for i in m.interventions])")


def open_notebook(page, jupyter_server, front_end: str, name: str, cells: list[str]) -> None:
    """Write ``cells`` as notebook ``name``, open it in ``front_end`` and run every cell."""
    root, base = jupyter_server
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / name)
    page.goto(f"{base}/lab/tree/{name}?reset" if front_end == "lab" else f"{base}/notebooks/{name}")
    page.locator(".jp-Notebook .jp-Cell").nth(len(cells) - 1).wait_for(timeout=60_000)
    page.wait_for_timeout(2_000)  # the kernel session starts
    run_all_cells(page)


def assert_clean(page, front_end: str) -> None:
    assert "Error displaying widget" not in page.content()
    ours = [error for error in page.errors if error not in FRONT_END_NOISE.get(front_end, ())]
    assert not ours, page.errors
    assert not page.refused, page.refused


@pytest.mark.parametrize("front_end", ["lab", "notebooks"])
def test_checkup_action_installs_the_fix_and_queues_behind_a_running_cell(front_end, jupyter_server, page):
    cells = ["%load_ext neuro_magics", SETUP, "result = nm.checkup(m, TEXTS, spectra=False)\nresult", BUSY, KINDS]
    checkup, busy, kinds = 2, 3, 4
    open_notebook(page, jupyter_server, front_end, f"checkup_{front_end}.ipynb", cells)
    cell_output(page, kinds).get_by_text("KINDS []").wait_for(timeout=120_000)
    widget = cell_output(page, checkup)
    status = widget.locator(".nm-status")

    def finding(title: str):
        item = widget.locator(".nm-finding", has_text=title)
        item.locator(".nm-finding-head").click()  # opens it onto its view and action button
        return item.locator("button.nm-action")

    massive, dead = finding("Massive activation: dim 5"), finding("dead MLP neuron at step 1 (block 1)")
    massive.click()
    status.get_by_text("Applied finding 0").wait_for(timeout=60_000)
    widget.locator(".nm-diff").first.wait_for(timeout=30_000)  # the before/after diff shows below
    run_cell(page, kinds)
    cell_output(page, kinds).get_by_text("KINDS [('massive', None)]").wait_for(timeout=30_000)

    # a click while a cell runs waits for the cell: the cell sees one set of interventions throughout
    run_cell(page, busy)
    page.wait_for_timeout(3_000)
    dead.click()
    status.get_by_text("queued").wait_for(timeout=10_000)
    cell_output(page, busy).get_by_text("SAW ['massive'] ['massive']").wait_for(timeout=30_000)
    status.get_by_text("Applied finding 1").wait_for(timeout=60_000)
    run_cell(page, kinds)
    cell_output(page, kinds).get_by_text("KINDS [('massive', None), ('ablate', None)]").wait_for(timeout=30_000)
    assert_clean(page, front_end)


@pytest.mark.parametrize("front_end", ["lab", "notebooks"])
def test_sae_dashboard_steer_button_installs_the_typed_coefficient(front_end, jupyter_server, page):
    train = ("sae = nm.train_sae(m, layer=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, "
             "progress=False)\nsae")
    cells = ["%load_ext neuro_magics", SETUP, train, KINDS]
    dashboard, kinds = 2, 3
    open_notebook(page, jupyter_server, front_end, f"sae_{front_end}.ipynb", cells)
    cell_output(page, kinds).get_by_text("KINDS []").wait_for(timeout=120_000)
    widget = cell_output(page, dashboard)
    widget.locator(".nm-sae-actions input").fill("0.01")
    widget.get_by_role("button", name="steer", exact=True).click()
    widget.locator(".nm-sae-status").get_by_text("Installed: add 0.01 x").wait_for(timeout=60_000)
    run_cell(page, kinds)
    cell_output(page, kinds).get_by_text("KINDS [('steer', 0.01)]").wait_for(timeout=30_000)
    assert_clean(page, front_end)
