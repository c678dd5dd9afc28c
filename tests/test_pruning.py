"""Pruning (oracle 22 of tests/ORACLES.md): Wanda and magnitude masks equal a numpy computation
written here from the papers' definitions, with the stated sparsity in every row; layer
removal equals ``drop_layers`` of the steps a hand-written Block Influence picks; undo and
reset are bit-identical; bad input changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.pruning import prune, row_mask
from neuro_magics.core.corpus import calibration_passages
from neuro_magics.analyses.surgery import drop_layers, save_materialized
from neuro_magics.core.adapters import weight_matrix
from neuro_magics.core.errors import NeuroMagicsError
from neuro_magics.core.interventions import reset_interventions

FAMILIES = ("llama", "gpt2")  # nn.Linear and GPT-2's transposed Conv1D


@pytest.fixture(params=FAMILIES)
def small(request):
    from tiny_models import tiny_model, tiny_tokenizer

    return nm.Subject(tiny_model(request.param), tiny_tokenizer())


def _weights(subject) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in subject.model.named_parameters()}


def _logits(subject) -> torch.Tensor:
    with torch.no_grad():
        return subject.model(subject.encode("the cat sat")["input_ids"], use_cache=False).logits


def _hand_mask(weight: np.ndarray, norm: np.ndarray | None, sparsity: float) -> np.ndarray:
    """Wanda / magnitude by hand: per output row, zero the floor(in * s) lowest |W| (* ||X_j||)."""
    score = np.abs(weight) * (1.0 if norm is None else norm[None, :])
    keep = np.ones_like(weight, dtype=bool)
    n = int(weight.shape[1] * sparsity)
    for row in range(weight.shape[0]):
        keep[row, np.argsort(score[row], kind="stable")[:n]] = False
    return keep


def test_row_mask_matches_a_hand_computation_with_the_stated_sparsity_per_row():
    scores = torch.rand(7, 10, generator=torch.Generator().manual_seed(0))
    for sparsity in (0.1, 0.5, 0.75):
        keep = row_mask(scores, sparsity).numpy()
        assert np.array_equal(keep, _hand_mask(scores.numpy(), None, sparsity))
        assert (keep.sum(1) == 10 - int(10 * sparsity)).all()


@pytest.mark.parametrize("method", ["magnitude", "wanda"])
def test_masks_equal_the_hand_computation(small, method):
    originals = {name: weight_matrix(m).detach().clone().numpy() for name, m in small.block_matrices().items()}
    norms = {}
    if method == "wanda":  # ||X_j|| over every calibration token, by our own hooks
        squares = {}
        handles = [m.register_forward_pre_hook(lambda mod, args, name=name: squares.__setitem__(
            name, squares.get(name, 0) + (args[0].reshape(-1, args[0].shape[-1]).double() ** 2).sum(0)))
            for name, m in small.block_matrices().items()]
        with torch.no_grad():
            for passage in calibration_passages():
                ids = small.tokenizer(passage, return_tensors="pt")["input_ids"][:, :small.context_length]
                small.model(input_ids=ids, use_cache=False)
        for handle in handles:
            handle.remove()
        norms = {name: value.sqrt().numpy() for name, value in squares.items()}
    result = prune(small, method, 0.5)
    for k, (name, module) in enumerate(small.block_matrices().items()):
        keep = _hand_mask(originals[name], norms.get(name), 0.5)
        assert np.array_equal(weight_matrix(module).detach().numpy(), originals[name] * keep), name
        assert result.matrix_sparsity[k] == pytest.approx(int(originals[name].shape[1] * 0.5) / originals[name].shape[1])
    assert result.nonzero_after < result.nonzero_before
    assert "prune" in repr(small)


def test_undo_and_reset_are_bit_identical_and_stack_with_other_weight_changes(small):
    weights, logits = _weights(small), _logits(small)
    first = prune(small, "magnitude", 0.3)
    after_first = _weights(small)
    prune(small, "magnitude", 0.6)
    assert not torch.equal(_logits(small), logits)
    # Removing the first of two stacked weight changes restores it and re-applies the second.
    small.remove_intervention(small.interventions[0])
    assert len(small.interventions) == 1
    reset_interventions(small)
    assert all(torch.equal(p, weights[name]) for name, p in small.model.named_parameters())
    assert torch.equal(_logits(small), logits)
    assert first.nonzero_after == sum(int(p.count_nonzero()) for p in after_first.values())


def test_replay_rebuilds_the_same_mask(small):
    result = prune(small, "wanda", 0.5)
    pruned = _weights(small)
    reset_interventions(small)
    result.replay(small)
    assert all(torch.equal(p, pruned[name]) for name, p in small.model.named_parameters())
    reset_interventions(small)


def test_layer_removal_equals_drop_layers_of_the_lowest_block_influence(small):
    logits = _logits(small)
    # Block Influence by hand: HF's hidden states are each block's input; the last block's
    # output (before the final norm) is taken with a hook.
    outputs = []
    handle = small.blocks[-1].register_forward_hook(lambda m, a, o: outputs.append(o[0] if isinstance(o, tuple) else o))
    influence, count = 0.0, 0
    with torch.no_grad():
        for passage in calibration_passages():
            ids = small.tokenizer(passage, return_tensors="pt")["input_ids"][:, :small.context_length]
            hidden = small.model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
            states = torch.stack([*hidden[:-1], outputs.pop()])[:, 0].double()
            cos = torch.nn.functional.cosine_similarity(states[:-1], states[1:], dim=-1)
            influence = influence + (1 - cos).sum(-1)
            count += ids.shape[1]
    handle.remove()
    lowest = sorted(np.argsort((influence / count).numpy(), kind="stable")[:2].tolist())

    result = prune(small, "layers", drop=2)
    assert result.dropped == lowest
    np.testing.assert_allclose(result.block_influence, (influence / count).numpy(), rtol=1e-4, atol=1e-6)
    pruned_program, pruned_logits = small.program, _logits(small)
    small.reset()
    assert torch.equal(_logits(small), logits)
    drop_layers(small, lowest, diff=False)
    assert small.program == pruned_program and torch.equal(_logits(small), pruned_logits)
    small.reset()


def test_the_pruned_model_is_saved_with_its_masks_folded_in(small, tmp_path):
    from transformers import AutoModelForCausalLM

    prune(small, "magnitude", 0.5)
    logits = _logits(small)
    path = save_materialized(small, tmp_path / "pruned")
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        assert torch.allclose(loaded(small.encode("the cat sat")["input_ids"]).logits, logits, atol=1e-5)
    reset_interventions(small)


def test_the_result_saves_and_loads(small, tmp_path):
    result = prune(small, "magnitude", 0.25, install=False)
    assert not small.interventions
    loaded = nm.load_result(result.save(tmp_path / "prune"))
    assert np.array_equal(loaded.matrix_sparsity, result.matrix_sparsity)
    assert loaded.probes_after == result.probes_after and loaded.perplexity_after == result.perplexity_after


@pytest.mark.parametrize("arguments, message", [
    ({"method": "wanda", "sparsity": 0.0}, "strictly between 0 and 1"),
    ({"method": "magnitude", "sparsity": 1.0}, "strictly between 0 and 1"),
    ({"method": "wanda", "sparsity": -0.5}, "strictly between 0 and 1"),
    ({"method": "sparsegpt"}, "Unknown pruning method"),
    ({"method": "layers"}, "--drop-steps N"),
    ({"method": "layers", "drop": 4}, "--drop-steps N"),
    ({"method": "wanda", "drop": 2}, "--drop-steps is for --method steps"),
    ({"method": "wanda", "corpus": "/no/such/file.txt"}, "No corpus file"),
])
def test_bad_input_is_one_line_and_changes_nothing(small, arguments, message):
    weights, logits, program = _weights(small), _logits(small), small.program
    with pytest.raises(NeuroMagicsError, match=message) as error:
        prune(small, **arguments)
    assert "\n" not in str(error.value)
    assert small.program == program and not small.interventions and torch.equal(_logits(small), logits)
    assert all(torch.equal(p, weights[name]) for name, p in small.model.named_parameters())


def test_the_widget_and_figure_draw(small):
    for result in (prune(small, "magnitude", 0.5, install=False), prune(small, "layers", drop=1, install=False)):
        result.widget()
        assert result.figure().data
    assert small.program.is_identity and not small.interventions


def test_mergekit_and_hook_interventions_still_refuse_export(small, tmp_path):
    """A mergekit config reads the original weights, so a weight change would be lost; a hook
    intervention is never in the weights."""
    from neuro_magics.analyses.surgery import mergekit_yaml

    prune(small, "magnitude", 0.5)
    with pytest.raises(NeuroMagicsError, match="leave out the active interventions"):
        mergekit_yaml(small)
    nm.ablate(small, heads="0.1")
    with pytest.raises(NeuroMagicsError, match="zero-ablate"):
        save_materialized(small, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    reset_interventions(small)
