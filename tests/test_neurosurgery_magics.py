"""%edit, %prune: thin shells over nm.edit and nm.prune; undo, reset and lists; one-line errors
that change nothing."""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.editing import EditResult
from neuro_magics.analyses.pruning import PruneResult


@pytest.fixture
def loaded(shell):
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    shell.neuro_magics_session.subject = subject
    yield shell, subject
    nm.reset_interventions(subject)
    subject.reset()


def _weights(subject):
    return {name: p.detach().clone() for name, p in subject.model.named_parameters()}


def _same(subject, weights) -> bool:
    return all(torch.equal(p, weights[name]) for name, p in subject.model.named_parameters())


def test_edit_installs_lists_undoes_and_resets(loaded, capsys):
    shell, subject = loaded
    original = _weights(subject)
    result = shell.run_line_magic(
        "edit", '--prompt "{} plays the sport of" --subject "Bob Smith" --target " golf" --layer 1 '
                '--neighbour "Ann Lee" --max-new-tokens 3')
    assert isinstance(result, EditResult) and result.layer == 1 and result.diff is not None
    after_first = _weights(subject)
    shell.run_line_magic("edit", '--prompt "Ann Lee lives in" --subject "Ann Lee" --target " Rome" --layer 2 --no-diff')
    shell.run_line_magic("edit", "--list")
    assert "1. ROME at block 1" in capsys.readouterr().out
    shell.run_line_magic("edit", "--undo")
    assert _same(subject, after_first)
    shell.run_line_magic("edit", "--reset")
    assert _same(subject, original) and not subject.interventions


def test_prune_installs_and_resets(loaded):
    shell, subject = loaded
    original = _weights(subject)
    result = shell.run_line_magic("prune", "--method magnitude --sparsity 0.25")
    assert isinstance(result, PruneResult) and result.sparsity == 0.25 and not _same(subject, original)
    shell.run_line_magic("prune", "--reset")
    assert _same(subject, original)
    result = shell.run_line_magic("prune", "--method layers --drop 1")
    assert len(subject.program) == 3 and result.dropped and not subject.interventions


def test_weights_shows_the_views_and_simulates_rounding(loaded):
    from neuro_magics.analyses.quantization import QuantizeResult
    from neuro_magics.analyses.weights import WeightsResult

    shell, subject = loaded
    original = _weights(subject)
    assert isinstance(shell.run_line_magic("weights", ""), WeightsResult)
    result = shell.run_line_magic("weights", "--quantize 4 --layers 0-1 --max-new-tokens 2")
    assert isinstance(result, QuantizeResult) and len(result.matrices) == 14 and _same(subject, original)


@pytest.mark.parametrize("magic, line, message", [
    ("weights", "--quantize 2", "--quantize must be 4 or 8 \\(got 2\\)"),
    ("weights", "--layers 0-1", "goes with --quantize"),
    ("edit", '--prompt "{} plays" --subject "Bob"', "needs --target"),
    ("edit", '--prompt "Ann plays" --subject "Bob" --target " golf" --layer 1', "does not occur in the prompt"),
    ("edit", '--prompt "{} plays" --subject "Bob" --target " golf" --layer top', "block index or auto"),
    ("edit", "--undo --subject Bob", "takes no other options"),
    ("edit", "--undo", "No edit to undo"),
    ("prune", "--method wanda --sparsity 1.5", "strictly between 0 and 1"),
    ("prune", "--method wanda --sparsity 0", "strictly between 0 and 1"),
    ("prune", "--method layers", "--drop-steps N"),
    ("prune", "--method lottery", "Unknown pruning method"),
])
def test_bad_input_is_one_line_and_changes_nothing(loaded, magic, line, message):
    shell, subject = loaded
    weights = _weights(subject)
    with pytest.raises(UsageError, match=message) as error:
        shell.run_line_magic(magic, line)
    assert "\n" not in str(error.value)
    assert _same(subject, weights) and subject.program.is_identity and not subject.interventions
