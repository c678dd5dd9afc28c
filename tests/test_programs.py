"""Oracles 4-7 of TESTING.md on every supported family: zero-copy layer programs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuro_magics as nm
from neuro_magics.core.programs import parse_ranges

PROGRAMS = [
    (0, 1, 2, 1, 2, 3),  # RYS duplication of block 1..2
    (0, 1, 2, 3, 1, 2, 3),  # duplicate through the end
    (0, 2, 3),  # pruning
    (0, 2, 1, 3),  # reordering
    (0, 1, 0, 1, 2, 3, 2, 3),  # Goliath-style interleaving
]


def _layer_indices(model) -> list[tuple[str, int]]:
    return [(name, m.layer_idx) for name, m in model.named_modules() if isinstance(getattr(m, "layer_idx", None), int)]


def _physical_copy(subject: nm.Subject, steps) -> nn.Module:
    """The same model with its blocks deep-copied into program order: what mergekit would build."""
    clone = copy.deepcopy(subject.model)
    adapter = subject.adapter
    originals = adapter.block_list(clone)
    blocks = nn.ModuleList(copy.deepcopy(originals[b]) for b in steps)
    for position, block in enumerate(blocks):
        for module in block.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = position
    adapter.set_block_list(clone, blocks)
    clone.config.num_hidden_layers = len(steps)
    if getattr(clone.config, "layer_types", None) is not None:
        clone.config.layer_types = [subject.model.config.layer_types[b] for b in steps]
    return clone


@torch.no_grad()
def test_identity_program_is_bit_identical(tiny, token_ids):
    reference = tiny.model(token_ids).logits
    tiny.set_program(nm.LayerProgram.identity(tiny.n_layers))
    assert tiny.adapter.block_list(tiny.model) is tiny.blocks
    assert torch.equal(tiny.model(token_ids).logits, reference)


@pytest.mark.parametrize("steps", PROGRAMS)
@torch.no_grad()
def test_program_equals_a_physical_copy_and_the_runner(tiny, token_ids, steps):
    expected = _physical_copy(tiny, steps)(token_ids, use_cache=False).logits
    tiny.set_program(steps)
    got = tiny.model(token_ids, use_cache=False).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    hand_loop = nm.run(tiny, nm.prepare(tiny, token_ids), logits_at="all").logits
    torch.testing.assert_close(hand_loop, got, rtol=0, atol=1e-6)


@torch.no_grad()
def test_a_duplicated_block_really_runs(tiny, token_ids):
    reference = tiny.model(token_ids).logits
    tiny.set_program(PROGRAMS[0])
    assert not torch.allclose(tiny.model(token_ids).logits, reference)


def test_programs_are_zero_copy(tiny):
    params = list(tiny.model.parameters())
    pointers = sorted(p.data_ptr() for p in params)
    state_bytes = sum(p.numel() * p.element_size() for p in params)
    tiny.set_program(PROGRAMS[4])
    after = list(tiny.model.parameters())
    assert len(after) == len(params)
    assert sorted(p.data_ptr() for p in after) == pointers
    assert sum(p.numel() * p.element_size() for p in after) == state_bytes
    # every occurrence of a block shares the block's weights
    occurrences = tiny.adapter.block_list(tiny.model)
    for position, block_index in enumerate(PROGRAMS[4]):
        ours = [p.data_ptr() for p in occurrences[position].parameters()]
        assert ours == [p.data_ptr() for p in tiny.blocks[block_index].parameters()]


def test_each_occurrence_has_its_own_kv_slot(tiny):
    tiny.set_program(PROGRAMS[1])
    indices = []
    for block in tiny.adapter.block_list(tiny.model):
        indices.append({m.layer_idx for m in block.modules() if isinstance(getattr(m, "layer_idx", None), int)})
    assert indices == [{k} for k in range(len(PROGRAMS[1]))]
    assert tiny.model.config.num_hidden_layers == len(PROGRAMS[1])


@pytest.mark.parametrize("steps", [PROGRAMS[0], PROGRAMS[4]])
@torch.no_grad()
def test_cached_generation_equals_uncached_forwards(tiny, steps):
    tiny.set_program(steps)
    prompt = torch.tensor([[5, 17, 33, 8, 61, 9]])
    generated = tiny.model.generate(
        prompt, max_new_tokens=8, do_sample=False, output_logits=True, return_dict_in_generate=True,
        pad_token_id=0, eos_token_id=None,
    )
    sequence = prompt
    for step_logits in generated.logits:
        full = tiny.model(sequence, use_cache=False).logits[:, -1]
        torch.testing.assert_close(step_logits, full, rtol=0, atol=1e-4)
        sequence = torch.cat([sequence, full.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generated.sequences, sequence)


@torch.no_grad()
def test_reset_restores_logits_layer_idx_and_config_exactly(tiny, token_ids):
    reference = tiny.model(token_ids).logits
    indices = _layer_indices(tiny.model)
    config = tiny.model.config.to_dict()
    for steps in PROGRAMS:
        tiny.set_program(steps)
        tiny.model.generate(token_ids[:1], max_new_tokens=2, do_sample=False, pad_token_id=0)
    tiny.reset()
    assert tiny.program.is_identity
    assert tiny.adapter.block_list(tiny.model) is tiny.blocks
    assert torch.equal(tiny.model(token_ids).logits, reference)
    assert _layer_indices(tiny.model) == indices
    assert tiny.model.config.to_dict() == config


def test_program_applied_restores_after_an_exception(tiny):
    with pytest.raises(ZeroDivisionError):
        with tiny.program_applied(PROGRAMS[0]):
            assert tiny.program.steps == PROGRAMS[0]
            1 / 0
    assert tiny.program.is_identity
    assert tiny.adapter.block_list(tiny.model) is tiny.blocks


def test_bad_programs_leave_the_program_unchanged(tiny):
    tiny.set_program(PROGRAMS[0])
    for bad in ([], [0, 4], [-1], list(range(4)) * 9):
        with pytest.raises(nm.NeuroMagicsError):
            tiny.set_program(bad)
        assert tiny.program.steps == PROGRAMS[0]


def test_layer_program_constructors_and_ranges():
    assert nm.LayerProgram.duplicate(6, 2, 4).steps == (0, 1, 2, 3, 2, 3, 4, 5)
    assert nm.LayerProgram.duplicate(6, 2, 4, times=2).steps == (0, 1, 2, 3, 2, 3, 2, 3, 4, 5)
    assert str(nm.LayerProgram.duplicate(30, 8, 16)) == "0-15,8-29"
    assert nm.LayerProgram.parse("0-2,1:3,5", 6).steps == (0, 1, 2, 1, 2, 5)
    assert parse_ranges("3", 4) == [3]
    for bad in ("", "0-", "a", "3-1", "0-6", "2:2"):
        with pytest.raises(nm.NeuroMagicsError):
            parse_ranges(bad, 6)
    for start, end, times in ((3, 3, 1), (4, 2, 1), (0, 7, 1), (1, 2, 0)):
        with pytest.raises(nm.NeuroMagicsError):
            nm.LayerProgram.duplicate(6, start, end, times)


@torch.no_grad()
def test_programs_work_under_accelerate_dispatch_hooks(tiny):
    """device_map="auto" wraps each module's forward per instance; views must still use their own KV slot."""
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    for module in tiny.model.modules():
        add_hook_to_module(module, AlignDevicesHook(execution_device="cpu"))
    tiny.set_program(PROGRAMS[0])
    prompt = torch.tensor([[5, 17, 33, 8, 61, 9]])
    generated = tiny.model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    sequence = prompt
    for _ in range(6):
        next_token = tiny.model(sequence, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
        sequence = torch.cat([sequence, next_token], dim=1)
    assert torch.equal(generated, sequence)
