"""Primitives several analyses share, moved into core: each against a hand computation on a case
asymmetric enough to show a swapped axis, sign or normaliser."""

from __future__ import annotations

import math

import numpy as np
import torch

import neuro_magics as nm
from neuro_magics.core.answers import metric_values, subject_positions, top_tokens
from neuro_magics.core.matrices import matrix_grid
from neuro_magics.core.programs import LayerProgram, dropped
from tiny_models import tiny_model, tiny_tokenizer


def test_matrix_grid_lays_numbers_out_as_blocks_by_matrices_with_gaps():
    names = ["0.self_attn.q_proj", "0.mlp.down_proj", "2.self_attn.q_proj", "1.mlp.down_proj", "1.self_attn.o_proj"]
    grid, blocks, paths = matrix_grid(names, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert blocks == ["0", "2", "1"] and paths == ["self_attn.q_proj", "mlp.down_proj", "self_attn.o_proj"]
    expected = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [np.nan, 4.0, 5.0]], dtype=np.float32)
    np.testing.assert_array_equal(grid, expected)


def test_metric_values_are_the_logit_difference_log_probability_and_probability():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.0, 4.0, -2.0, 1.0]])
    by_hand = [[math.log(math.exp(v) / sum(math.exp(x) for x in row)) for v in row] for row in logits.tolist()]
    np.testing.assert_allclose(metric_values(logits, [2, 1], "logit_diff").numpy(), [1.5, -6.0], rtol=1e-6)
    np.testing.assert_allclose(metric_values(logits, [2, 1], "logprob").numpy(),
                               [by_hand[0][2], by_hand[1][2]], rtol=1e-6)
    np.testing.assert_allclose(metric_values(logits, [3, 0], "prob").numpy(),
                               [math.exp(by_hand[0][3]), math.exp(by_hand[1][3])], rtol=1e-6)
    ids, probs = top_tokens(logits, 2)
    assert ids.tolist() == [[3, 0], [1, 3]]
    np.testing.assert_allclose(probs.numpy(), np.exp([[by_hand[0][3], by_hand[0][0]], [by_hand[1][1], by_hand[1][3]]]),
                               rtol=1e-6)


def test_subject_positions_are_the_tokens_that_overlap_the_named_text():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
    prompt = "The Eiffel Tower is in"
    positions = subject_positions(subject, prompt, "Eiffel Tower")
    encoded = subject.tokenizer(prompt, return_offsets_mapping=True)
    pieces = "".join(prompt[a:b] for a, b in (encoded["offset_mapping"][p] for p in positions))
    assert pieces.replace(" ", "") == "EiffelTower" and positions == list(range(positions[0], positions[-1] + 1))
    assert positions[0] > 0 and positions[-1] < len(encoded["input_ids"]) - 2  # neither "The" nor "is in"


def test_dropped_removes_exactly_the_given_steps():
    program = LayerProgram((0, 1, 2, 3, 2, 3), 4)
    assert dropped(program, [1, 4]).steps == (0, 2, 3, 3)
