"""%checkup under a layer program that runs block 0 twice (steps 0 and 1), so every later step
differs from its block: each finding says which step and which block, and its action names the
block. Oracle: the planted ground truth of test_checkup.py (a dead MLP neuron in block 1, a sink
head in block 2), placed by hand at the steps the program [0, 0, 1, 2, 3] runs them; and a
result saved before steps and blocks were told apart, written out here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_checkup import DEAD_LAYER, DEAD_NEURON, SINK_HEAD, SINK_LAYER, TEXTS, _plant_sink, _subject
from tiny_models import tiny_model

from neuro_magics import load_result
from neuro_magics.analyses.checkup import checkup

PROGRAM = [0, 0, 1, 2, 3]
DEAD_STEP, SINK_STEP = PROGRAM.index(DEAD_LAYER), PROGRAM.index(SINK_LAYER)  # 2 and 3


@pytest.fixture(scope="module")
def duplicated():
    model = tiny_model("llama")
    _plant_sink(model)
    with torch.no_grad():
        model.model.layers[DEAD_LAYER].mlp.gate_proj.weight[DEAD_NEURON] = 0.0
    subject = _subject(model)
    subject.set_program(PROGRAM)
    return subject, checkup(subject, TEXTS)


def test_findings_name_the_step_and_the_block_it_runs(duplicated):
    subject, result = duplicated
    assert (DEAD_STEP, SINK_STEP) == (2, 3) and result.program_steps == PROGRAM
    (dead,) = [f for f in result.findings if f.kind == "dead_neurons"]
    assert (dead.step, dead.block, dead.dim) == (DEAD_STEP, DEAD_LAYER, DEAD_NEURON), result
    assert dead.title == f"1 dead MLP neuron at step {DEAD_STEP} (block {DEAD_LAYER}): {DEAD_NEURON}"
    assert dead.action == {"kind": "ablate_neurons", "neurons": [[DEAD_LAYER, DEAD_NEURON]]}
    assert result.neuron_max[DEAD_STEP, DEAD_NEURON] == 0 and result.neuron_max[DEAD_LAYER, DEAD_NEURON] > 0
    (sink,) = [f for f in result.findings if f.kind == "attention_sink"]
    assert (sink.step, sink.block, sink.head) == (SINK_STEP, SINK_LAYER, SINK_HEAD), result
    assert f"head {SINK_HEAD} at step {SINK_STEP} (block {SINK_LAYER})" in sink.explanation
    assert sink.action == {"kind": "ablate_heads", "heads": [[SINK_LAYER, SINK_HEAD]]}
    for finding in result.findings:  # every per-step finding's block is the one its step runs
        if finding.step is not None:
            assert finding.block == PROGRAM[finding.step], finding
    (lens,) = [f for f in result.findings if f.kind == "logit_lens"]
    assert f"step {lens.step} (block {PROGRAM[lens.step]}) of {len(PROGRAM)} steps" in lens.title


def test_the_table_and_a_saved_result_keep_step_and_block(duplicated, tmp_path):
    _, result = duplicated
    table = result.to_pandas()
    assert {"step", "block"} <= set(table.columns) and "layer" not in table.columns
    row = table[table["kind"] == "dead_neurons"].iloc[0]
    assert (row["step"], row["block"]) == (DEAD_STEP, DEAD_LAYER)
    assert load_result(result.save(tmp_path / "c.npz")).findings == result.findings


def test_a_result_saved_with_layer_still_loads_as_steps_and_blocks(duplicated, tmp_path):
    """Before this change a finding held ``layer``: a program step, except in the weight
    spectra (``alpha``), whose rows are blocks. The file is rewritten here to that format."""
    _, result = duplicated
    with np.load(result.save(tmp_path / "new.npz")) as saved:
        contents = {name: saved[name] for name in saved.files}
    header = json.loads(str(contents["__header__"]))
    old_findings = []
    for finding in header["fields"]["findings"]:
        step, block = finding.pop("step"), finding.pop("block")
        old_findings.append({**finding, "layer": block if finding["view"] == "alpha" else step})
    header["fields"]["findings"] = old_findings
    contents["__header__"] = np.array(json.dumps(header))
    old = tmp_path / "old.npz"
    with open(old, "wb") as handle:
        np.savez_compressed(handle, **contents)
    loaded = load_result(old)
    assert [(f.kind, f.step, f.block) for f in loaded.findings] == [(f.kind, f.step, f.block) for f in result.findings]
    spectra = [f for f in loaded.findings if f.view == "alpha"]
    assert all(f.step is None and f.block is not None for f in spectra)
    np.testing.assert_array_equal(loaded.neuron_max, result.neuron_max)
