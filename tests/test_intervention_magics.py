"""%patch, %ablate, %steer: thin shells over the engine, one-line errors, the model left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.diffing import DiffResult
from neuro_magics.core.interventions import active_interventions
from neuro_magics.analyses.patching import PatchResult
from neuro_magics.analyses.tracing import TraceResult

PATCH = '--clean "ab cdefgh" --corrupt "ab cdXfgh" --answers "e" "X"'


@pytest.fixture
def loaded(shell):
    from tiny_models import tiny_model, tiny_tokenizer

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    shell.neuro_magics_session.subject = subject
    yield shell, subject
    nm.reset_interventions(subject)


@torch.no_grad()
def _logits(subject):
    return subject.model(subject.encode("the cat")["input_ids"], use_cache=False).logits


def test_patch_magic_equals_the_function(loaded):
    shell, subject = loaded
    result = shell.run_line_magic("patch", PATCH + " --site heads --method both --metric logprob")
    assert isinstance(result, PatchResult) and result.site == "heads" and result.attribution is not None
    direct = nm.patch(subject, "ab cdefgh", "ab cdXfgh", ["e", "X"], site="heads", method="both", metric="logprob",
                      progress=False)
    np.testing.assert_array_equal(result.effect, direct.effect)


def test_answers_keep_their_leading_spaces(loaded):
    shell, _ = loaded
    result = shell.run_line_magic("patch", '--clean "ab cdefgh" --corrupt "ab cdXfgh" --answers " " "X"')
    assert result.answers == [" ", "X"]


def test_trace_through_the_patch_magic(loaded):
    shell, _ = loaded
    result = shell.run_line_magic("patch", '--clean "The Q is in" --method trace --subject "Q"')
    assert isinstance(result, TraceResult) and result.subject_positions == [4]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (PATCH.replace('"e" "X"', '"ef" "X"'), r"'ef' is 2 tokens \('e' \+ 'f'\)"),
        (PATCH + " --site resid_mid", "Unknown site 'resid_mid'"),
        ('--corrupt "ab cdXfgh" --answers e X', "clean prompt is missing"),
        ('--clean "ab cdefgh" --answers e X', "corrupt prompt is missing"),
        (PATCH + " --subject Q", "--subject is for --method trace"),
        ('--clean "The Q" --method trace', "needs --subject"),
        ('--clean "The Q" --corrupt "The R" --method trace --subject Q', "drop --corrupt"),
    ],
)
def test_bad_patch_input_is_one_line_and_changes_nothing(loaded, line, message):
    shell, subject = loaded
    reference = _logits(subject)
    with pytest.raises(UsageError, match=message) as error:
        shell.run_line_magic("patch", line)
    assert "\n" not in str(error.value)
    assert subject.program.is_identity and torch.equal(_logits(subject), reference)


def test_ablate_shows_the_diff_installs_lists_and_resets(loaded, capsys):
    shell, subject = loaded
    reference = _logits(subject)
    diff = shell.run_line_magic("ablate", '--heads 1.2,3.0 --prompt "the cat" --max-new-tokens 3')
    assert isinstance(diff, DiffResult) and diff.prompts == ["the cat"]
    assert "Active until %ablate --reset: zero-ablate heads 1.2,3.0" in capsys.readouterr().out
    assert not torch.equal(_logits(subject), reference)
    shell.run_line_magic("ablate", "")
    assert "1. zero-ablate heads 1.2,3.0" in capsys.readouterr().out
    shell.run_line_magic("ablate", "--reset")
    assert "Removed 1 ablation" in capsys.readouterr().out
    assert active_interventions(subject) == [] and torch.equal(_logits(subject), reference)


def test_steer_shows_the_diff_and_composes_with_ablation(loaded, capsys):
    shell, subject = loaded
    shell.run_line_magic("ablate", "--layers 3 --no-diff")
    after_ablation = _logits(subject)
    diff = shell.run_line_magic("steer", '--pos "up" --neg "down" --layer 1 --coef 8 --prompt "the cat" --max-new-tokens 3')
    assert isinstance(diff, DiffResult)
    assert [i.kind for i in active_interventions(subject)] == ["ablate", "steer"]
    shell.run_line_magic("steer", "--reset")
    assert torch.equal(_logits(subject), after_ablation)
    assert [i.kind for i in active_interventions(subject)] == ["ablate"]


@pytest.mark.parametrize(
    ("magic", "line", "message"),
    [
        ("ablate", "--heads 1.9 --no-diff", r"Head 1.9 is out of range"),
        ("ablate", "--neurons 1:x --no-diff", "Cannot read '1:x' as a neuron"),
        ("ablate", "--reset --heads 1.2", "--reset takes no other options"),
        ("steer", "--pos up --neg down --coef 2", "needs --block N and --coef X"),
        ("steer", "--pairs {empty} --layer 1 --coef 2 --no-diff", "holds no contrast pairs"),
        ("steer", "--pos up --layer 1 --coef 2 --no-diff", "needs both --pos and --neg"),
    ],
)
def test_bad_intervention_input_is_one_line_and_changes_nothing(loaded, tmp_path, magic, line, message):
    shell, subject = loaded
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    reference = _logits(subject)
    with pytest.raises(UsageError, match=message) as error:
        shell.run_line_magic(magic, line.format(empty=empty))
    assert "\n" not in str(error.value)
    assert active_interventions(subject) == [] and torch.equal(_logits(subject), reference)


def test_magics_need_a_model_and_document_their_options(shell):
    for magic in ("patch", "ablate", "steer"):
        with pytest.raises(UsageError, match="No model is loaded"):
            shell.run_line_magic(magic, "--reset" if magic != "patch" else PATCH)
    docs = {name: shell.magics_manager.magics["line"][name].__doc__ for name in ("patch", "ablate", "steer")}
    assert "--clean" in docs["patch"] and "--direction" in docs["patch"] and "--method" in docs["patch"]
    assert "--heads" in docs["ablate"] and "--mode" in docs["ablate"]
    assert "--pairs" in docs["steer"] and "--coef" in docs["steer"]
