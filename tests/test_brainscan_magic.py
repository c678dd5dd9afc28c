"""%%brainscan: options reach nm.brainscan, results land in variables and files, and every
bad input is one line that leaves the model exactly as it was."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.brain_scan import BrainScanResult
from neuro_magics.core.probe_sets import load_probe, teacher_forced_batch
from tiny_models import tiny_model, tiny_tokenizer

ITEMS = '{"prompt": "ab", "answer": "cd"}\n\n{"prompt": "The cat sat on the", "answer": "mat", "scorer": "match"}\n'


@pytest.fixture
def loaded(shell):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    shell.neuro_magics_session.subject = subject
    return shell, subject


def state(subject):
    with torch.no_grad():
        logits = subject.model(torch.tensor([[5, 9, 17, 33, 60]]), use_cache=False).logits
    return logits, subject.program


def test_cell_items_variable_and_options(loaded):
    shell, subject = loaded
    result = shell.run_cell_magic("brainscan", "--layers 1:4 --times 2 -o scan", ITEMS)
    assert shell.user_ns["scan"] is result
    assert isinstance(result, BrainScanResult) and result.complete and result.n_configs == 6
    assert result.metadata["probe"] == "custom" and result.metadata["times"] == 2
    assert [item[2] for item in result.metadata["items"]] == ["match", "match"]
    direct = nm.brainscan(subject, items=ITEMS, layers="1:4", times=2, progress=False)
    np.testing.assert_array_equal(result.scores, direct.scores)
    assert subject.program.is_identity


def test_line_form_with_builtin_probe_limit_and_text_passages(loaded):
    shell, _ = loaded
    result = shell.run_line_magic("brainscan", "--probe math --limit 2 --layers 2:4")
    assert len(result.baseline_items) == 2 and result.metadata["probe"] == "math"
    text = shell.run_cell_magic("brainscan", "--probe text --layers 3:4", "one short passage\n\nand another one")
    assert text.metadata["items"] == [["", "one short passage", "text"], ["", "and another one", "text"]]


def greedy_first_line(subject, prompt: str, program, max_new_tokens: int) -> str:
    """The model's greedy answer under ``program`` by a plain HF generate of one unpadded
    prompt: its continuation up to the first line break, stripped."""
    ids = subject.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with subject.program_applied(program), torch.no_grad():
        output = subject.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=subject.tokenizer.eos_token_id)
    text = subject.tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)
    return text.strip().split("\n", 1)[0].strip()


def test_generate_score_and_jsonl_file(loaded, tmp_path):
    """Items built from the model's own greedy answers under config (3, 4), so their credit
    is known by hand: a number item whose answer is twice the positive integer the model
    writes gets RYS partial credit 1 - |p - 2p| / 2p = 0.5; a match item whose answer is
    the model's first word gets 1."""
    shell, subject = loaded
    program = nm.LayerProgram.duplicate(subject.n_layers, 3, 4)
    number, word = None, None  # (prompt, what the model writes)
    for prompt in (f"{k}*{k}=" for k in range(100)):
        line = greedy_first_line(subject, prompt, program, 3)
        if number is None and (match := re.match(r"[1-9]\d*", line)):
            number = (prompt, int(match.group()))
        if word is None and line and re.fullmatch(r"[A-Za-z]+", line.split()[0]):
            word = (prompt, line.split()[0])
        if number and word:
            break
    (number_prompt, written), (word_prompt, first_word) = number, word
    probe = tmp_path / "mine.jsonl"
    probe.write_text(json.dumps({"prompt": number_prompt, "answer": str(2 * written)}) + "\n"
                     + json.dumps({"prompt": word_prompt, "answer": first_word, "scorer": "match"}) + "\n")
    result = shell.run_line_magic("brainscan", f"--probe {probe} --score generate --max-new-tokens 3 --layers 3:4")
    assert result.metadata["probe"] == "mine.jsonl" and result.metadata["max_new_tokens"] == 3
    assert [item[2] for item in result.metadata["items"]] == ["number", "match"]
    np.testing.assert_allclose(result.item_scores[3, 4], [0.5, 1.0], atol=1e-12)


def test_save_then_resume_does_no_more_work(loaded, tmp_path):
    shell, subject = loaded
    path = tmp_path / "scan.npz"
    first = shell.run_line_magic("brainscan", f"--probe facts --limit 2 --layers 2:4 --save {path}")
    assert BrainScanResult.load(path).complete
    calls = []
    handle = subject.blocks[3].register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        again = shell.run_line_magic("brainscan", f"--probe facts --limit 2 --layers 2:4 --resume {path}")
    finally:
        handle.remove()
    # only the baseline runs that check the model is the same: one per group of equal-length items
    assert len(calls) == len(teacher_forced_batch(subject, load_probe("facts", limit=2)).by_length())
    np.testing.assert_array_equal(again.scores, first.scores)


@pytest.mark.parametrize(
    "line, cell, message",
    [
        ("--probe poems", None, "Unknown probe 'poems'"),
        ("", '{"prompt": "a", "answer": "b"}\nnot json', "Line 2 of the cell is not valid JSON"),
        ("", '{"prompt": "a", "answer": "b", "scorer": "number"}', "is not an integer"),
        ("--layers 0:40", None, "reaches block 39, but this model has blocks 0-3"),
        ("--layers 3:1", None, "empty or backwards"),
        ("--score sample", None, "invalid choice"),
        ("--probe text --score generate", None, "use --score logprob"),
        ("--times 0", None, "--times must be at least 1"),
        ("--limit 0", None, "--limit must be at least 1"),
        ("--max-new-tokens 0 --score generate", None, "--max-new-tokens must be at least 1"),
        ("-o 2bad", None, "-o needs a Python variable name"),
        ("--resume nowhere.npz", None, "No file"),
        ("--probe facts extra", None, "unrecognized arguments"),
        ("--workers 0", None, "--workers must be at least 1"),
        ("--ray-address 127.0.0.1:6379", None, "--ray-address needs --workers N"),
    ],
)
def test_bad_input_is_one_line_and_the_model_is_unchanged(loaded, line, cell, message):
    shell, subject = loaded
    before = state(subject)
    with pytest.raises(UsageError, match=message) as error:
        if cell is None:
            shell.run_line_magic("brainscan", line)
        else:
            shell.run_cell_magic("brainscan", line, cell)
    assert type(error.value) is UsageError and "\n" not in str(error.value)
    logits, program = state(subject)
    assert torch.equal(logits, before[0]) and program == before[1]


def test_needs_a_model_and_documents_its_options(shell):
    with pytest.raises(UsageError, match="No model is loaded"):
        shell.run_line_magic("brainscan", "")
    doc = shell.find_magic("brainscan", "cell").__doc__
    for option in ("--probe", "--score", "--max-new-tokens", "--layers", "--times", "--limit", "-o", "--save", "--resume"):
        assert option in doc


def test_nm_brainscan_stays_the_function_after_the_extension_loads(shell):
    """The engine module has another name than the function, so importing it cannot shadow nm.brainscan."""
    import neuro_magics.analyses.brain_scan

    assert nm.brainscan is neuro_magics.analyses.brain_scan.brainscan
