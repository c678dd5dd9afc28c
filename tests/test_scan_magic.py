"""%%scan: options reach nm.scan, and every bad input gives one line and leaves the model exactly as it was."""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.scanning import ScanBatch, ScanResult
from tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture
def loaded(shell, token_ids):
    """The shell with a tiny SDPA llama under a duplicated program, and a way to check it is untouched."""
    subject = nm.Subject(tiny_model("llama", attn="sdpa"), tiny_tokenizer())
    subject.set_program(nm.LayerProgram.duplicate(4, 1, 3))
    shell.neuro_magics_session.subject = subject
    with torch.no_grad():
        before = subject.model(token_ids, use_cache=False).logits

    def unchanged() -> bool:
        model = subject.model
        with torch.no_grad():
            same_logits = torch.equal(model(token_ids, use_cache=False).logits, before)
        no_hooks = not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        return (same_logits and no_hooks and subject.program == nm.LayerProgram.duplicate(4, 1, 3)
                and model.config._attn_implementation == "sdpa")

    return shell, subject, unchanged


def test_scan_cell_returns_and_stores_the_result(loaded):
    shell, subject, unchanged = loaded
    result = shell.run_cell_magic("scan", "--lens --attention --top-k 3 --steps 2-5 -o found", "abc abc\n")
    assert isinstance(result, ScanResult) and shell.user_ns["found"] is result
    assert result.prompt == "abc abc" and result.steps == [2, 3, 4, 5]
    assert result.row_labels[1] == "3 (block 1)"
    assert result.top_ids.shape[-1] == 3 and result.attention.shape[:2] == (4, 4)
    assert set(result.captures) == {"resid_pre", "resid_post", "attn_out", "mlp_out"}
    assert unchanged()


def test_target_keeps_its_leading_space_and_implies_the_lens(loaded):
    shell, subject, _ = loaded
    result = shell.run_cell_magic("scan", '--target " " --sites resid', "ab cd")
    assert result.target == " " and result.has_lens
    assert set(result.target_ids.tolist()) == {subject.tokenizer.convert_tokens_to_ids(" ")}
    assert set(result.captures) == {"resid_pre", "resid_post"}


def test_each_line_is_one_batched_prompt(loaded):
    shell, _, unchanged = loaded
    batch = shell.run_cell_magic("scan", "--each-line --lens", "first line\n\nsecond\n")
    assert isinstance(batch, ScanBatch) and [s.prompt for s in batch] == ["first line", "second"]
    assert unchanged()


def test_the_line_is_expanded_and_the_body_is_literal(loaded):
    shell, _, _ = loaded
    shell.user_ns["wanted"] = "x"
    shell.run_cell("%%scan --target {wanted} -o expanded\nsay {wanted}")
    result = shell.user_ns["expanded"]
    assert result.target == "x" and result.prompt == "say {wanted}"


def test_help_lists_the_options(loaded):
    shell, _, _ = loaded
    doc = shell.magics_manager.magics["cell"]["scan"].__doc__
    for option in ("--sites", "--steps", "--layers", "--lens", "--attention", "--top-k", "--target", "--each-line", "-o"):
        assert option in doc


@pytest.mark.parametrize(
    "line, cell, message",
    [
        ("", "   \n", "The cell is empty"),
        ("--sites resid,heads", "abc", "Unknown site 'heads': use any of resid, attn, mlp, neurons"),
        ("--steps 0:9", "abc", "reaches step 8"),
        ("--layers 0:9", "abc", "--layers is ambiguous under the program 0-2,1-3"),
        ("--steps 3-1", "abc", "backwards"),
        ("--target xy", "abc", "'xy' is 2 tokens ('x', 'y')"),
        ("--top-k 0", "abc", "--top-k must be between 1"),
        ("--bogus", "abc", "unrecognized arguments"),
        ("-o 2x", "abc", "not a valid Python name"),
        ("", "a" * 200, "The prompt is 200 tokens; this model's context is 128 tokens"),
        ("--attention", "a" * 120, "--steps"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_model_alone(loaded, monkeypatch, line, cell, message):
    shell, _, unchanged = loaded
    if "--attention" in line:  # a small cap so a short prompt crosses it
        monkeypatch.setattr("neuro_magics.core.memory.MAX_ATTENTION_BYTES", 2**16)
    with pytest.raises(UsageError) as error:
        shell.run_cell_magic("scan", line, cell)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert unchanged()


def test_no_model_loaded_says_what_to_do(shell):
    with pytest.raises(UsageError, match="%load_model"):
        shell.run_cell_magic("scan", "", "hello")


@pytest.mark.integration
def test_scan_magic_on_the_default_model(shell, default_subject):
    shell.neuro_magics_session.subject = default_subject
    result = shell.run_cell_magic("scan", '--target " Paris" --layers 20:30', "The capital of France is")
    assert result.steps == list(range(20, 30))
    assert result.top_tokens(len(result.steps) - 1, 4)[0][0] == " Paris"
    assert result.metric("target_rank")[-1, -1] == 1
