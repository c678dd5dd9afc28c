"""ROME knowledge editing (oracle 23 of tests/ORACLES.md), on tiny Llama and GPT-2 (Conv1D) models.

The published identities, checked through the down projection's own forward: the edited key
maps to the old value plus the optimised shift (``W' k* = W k* + delta``), and a key k with
``k^T C^-1 k* = 0`` is mapped as before, C computed here by hand from our own hooks. The key
is the down projection's input at the subject's last token (found here from character
offsets, not from the code's tokenizer offsets), averaged over the context prefixes. Undo
and reset are bit-identical; bad input is one line and changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses import editing
from neuro_magics.analyses.editing import CONTEXT_PREFIXES, DAMPING, edit, key_second_moment, undo_edit
from neuro_magics.analyses.pruning import calibration_passages
from neuro_magics.core.errors import NeuroMagicsError
from neuro_magics.core.interventions import reset_interventions

PROMPT, SUBJECT, TARGET = "{} plays the sport of", "Bob Smith", " golf"
LAYER = 1


@pytest.fixture(params=("llama", "gpt2"))
def small(request):
    from tiny_models import tiny_model, tiny_tokenizer

    return nm.Subject(tiny_model(request.param), tiny_tokenizer())


def _down(subject, layer=LAYER):
    return subject.adapter.submodule(subject.blocks[layer], subject.adapter.neurons)


def _weights(subject):
    return {name: p.detach().clone() for name, p in subject.model.named_parameters()}


def _same(subject, weights) -> bool:
    return all(torch.equal(p, weights[name]) for name, p in subject.model.named_parameters())


def _hand_moment(subject) -> torch.Tensor:
    keys = []
    handle = _down(subject).register_forward_pre_hook(lambda m, a: keys.append(a[0][0].double()))
    with torch.no_grad():
        for passage in calibration_passages():
            ids = subject.tokenizer(passage, return_tensors="pt")["input_ids"][:, :subject.context_length]
            subject.model(input_ids=ids, use_cache=False)
    handle.remove()
    x = torch.cat(keys)
    moment = x.T @ x / x.shape[0]
    return moment + DAMPING * moment.diagonal().mean() * torch.eye(x.shape[1], dtype=torch.float64)


def test_the_key_is_the_mlp_input_at_the_subjects_last_token(small):
    keys = []
    handle = _down(small).register_forward_pre_hook(lambda m, a: keys.append(a[0][0]))
    with torch.no_grad():
        for prefix in CONTEXT_PREFIXES:
            text = prefix + PROMPT.replace("{}", SUBJECT)
            small.model(small.tokenizer(text, return_tensors="pt")["input_ids"], use_cache=False)
            keys[-1] = keys[-1][text.index(SUBJECT) + len(SUBJECT) - 1]  # one character per token
    handle.remove()
    texts = [prefix + PROMPT.replace("{}", SUBJECT) for prefix in CONTEXT_PREFIXES]
    key = editing.subject_key(small, LAYER, texts, SUBJECT, TARGET)
    torch.testing.assert_close(key, torch.stack(keys).mean(0), rtol=1e-5, atol=1e-6)


def test_rank_one_identity_and_keys_orthogonal_under_c_are_untouched(small):
    moment = _hand_moment(small)
    torch.testing.assert_close(key_second_moment(small, LAYER), moment, rtol=1e-6, atol=1e-9)
    down = _down(small)
    generator = torch.Generator().manual_seed(0)
    result = edit(small, PROMPT, SUBJECT, TARGET, layer=LAYER, diff=False, install=False)
    key = torch.from_numpy(result.key).double()
    direction = torch.linalg.solve(moment, key)
    random_key = torch.randn(key.shape, generator=generator, dtype=torch.float64)
    orthogonal = random_key - (random_key @ direction) / (key @ direction) * key
    assert abs(float(orthogonal @ direction)) < 1e-9 * float(orthogonal.norm() * direction.norm())
    probes = torch.stack([key, orthogonal, random_key]).float()
    with torch.no_grad():
        before = down(probes)
        nm_edit = editing._edit(small, {"layer": LAYER, **_factors(result, moment)}, "test")
        with nm_edit.applied(small):
            after = down(probes)
    delta = torch.from_numpy(result.delta)
    assert delta.norm() > 0
    torch.testing.assert_close(after[0], before[0] + delta, rtol=1e-4, atol=1e-4)  # W' k* = W k* + delta
    torch.testing.assert_close(after[1], before[1], rtol=1e-4, atol=1e-5)  # k^T C^-1 k* = 0: untouched
    assert not torch.allclose(after[2], before[2], rtol=1e-4, atol=1e-5)  # a generic key does change


def _factors(result, moment):
    key, delta = torch.from_numpy(result.key).double(), torch.from_numpy(result.delta).double()
    direction = torch.linalg.solve(moment, key)
    return {"u": (delta / (key @ direction)).tolist(), "w": direction.tolist()}


def test_the_installed_edit_is_the_same_update(small):
    """The edit ``edit`` installs equals the rank-one update built from its reported key and shift."""
    result = edit(small, PROMPT, SUBJECT, TARGET, layer=LAYER, diff=False)
    installed = _down(small).weight.detach().clone()
    reset_interventions(small)
    with editing._edit(small, {"layer": LAYER, **_factors(result, _hand_moment(small))}, "test").applied(small):
        torch.testing.assert_close(_down(small).weight.detach(), installed, rtol=1e-5, atol=1e-6)


def test_edits_stack_and_undo_and_reset_are_bit_identical(small):
    original = _weights(small)
    edit(small, PROMPT, SUBJECT, TARGET, layer=LAYER, diff=False)
    after_first = _weights(small)
    edit(small, "{} lives in", "Ann Lee", " Paris", layer=LAYER, diff=False)
    assert len(small.interventions) == 2 and not _same(small, after_first)
    undo_edit(small)
    assert _same(small, after_first)
    edit(small, "{} lives in", "Ann Lee", " Paris", layer=2, diff=False)
    reset_interventions(small, "edit")
    assert _same(small, original)
    with pytest.raises(NeuroMagicsError, match="No edit to undo"):
        undo_edit(small)


def test_a_multi_token_target_is_edited_whole_and_its_tokens_are_shown(small, tmp_path):
    result = edit(small, "Bob Smith plays the sport of", SUBJECT, " golf", layer=LAYER, neighbours=["Ann Lee"])
    assert result.target_pieces == [" ", "g", "o", "l", "f"]
    assert "' ' + 'g' + 'o' + 'l' + 'f'" in repr(small.interventions[0])
    assert result.groups == ["prompt", "paraphrase", "paraphrase", "neighbour"]
    loaded = nm.load_result(result.save(tmp_path / "edit"))
    assert np.array_equal(loaded.new_after, result.new_after) and loaded.diff.after.texts == result.diff.after.texts
    replayed = _weights(small)
    reset_interventions(small)
    result.replay(small)
    assert _same(small, replayed)
    reset_interventions(small)
    result.widget()
    assert result.figure().data


@pytest.mark.parametrize("arguments, message", [
    ({"prompt": "{} plays the sport of", "subject_text": "", "target": " golf"}, "--subject is needed"),
    ({"prompt": "Ann Lee plays the sport of", "subject_text": SUBJECT, "target": " golf"}, "does not occur in the prompt"),
    ({"prompt": "{} and {} play", "subject_text": SUBJECT, "target": " golf"}, "write {} once"),
    ({"prompt": PROMPT, "subject_text": SUBJECT, "target": " "}, "--target is needed"),
    ({"prompt": PROMPT, "subject_text": SUBJECT, "target": " golf", "layer": 4}, "block 0-3"),
    ({"prompt": PROMPT, "subject_text": SUBJECT, "target": " golf", "layer": "middle"}, "block index or auto"),
    ({"prompt": PROMPT, "subject_text": SUBJECT, "target": " golf", "neighbours": [SUBJECT]}, "another subject"),
    ({"prompt": PROMPT, "subject_text": SUBJECT, "target": " golf", "paraphrases": ["He plays"]}, "does not mention"),
])
def test_bad_input_is_one_line_and_changes_nothing(small, arguments, message):
    weights = _weights(small)
    with pytest.raises(NeuroMagicsError, match=message) as error:
        edit(small, **arguments)
    assert "\n" not in str(error.value)
    assert not small.interventions and _same(small, weights)
