"""The lesion experiment and the %%networks / %ablate --network magics.

Oracles: answer log-probabilities computed here from HF's own logits (``log_softmax`` of one
unpadded item at a time), with the mask applied by a forward hook written here on the MLP
module; the random control counted against the networks' own masks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.analyses.lesion import LesionResult, energy_matched_dims_like, network_lesion, random_dims_like
from neuro_magics.analyses.networks import NetworksResult, networks
from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["The cat sat on the mat and looked at the door.", "x = [i * i for i in range(10)]",
         "A: Where is the station?\nB: Left after the bank.", "Seven times eight is fifty-six."] * 6
ITEMS = [{"prompt": "The cat sat on the", "answer": "mat"}, {"prompt": "Seven times eight is", "answer": "56"},
         {"prompt": "x = [i", "answer": "* i"}]


@pytest.fixture
def llama():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    subject.model.generation_config.eos_token_id = None
    return subject


@pytest.fixture
def found(llama) -> NetworksResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuroMagicsWarning)
        return networks(llama, TEXTS, components=3, threshold=1.5, progress=False)


def test_random_control_has_the_same_count_per_layer_and_avoids_the_networks(found):
    dims = found.dims_by_block("key")
    for seed in range(4):
        drawn = random_dims_like(dims, found.d_model, seed)
        assert {layer: len(d) for layer, d in drawn.items()} == {layer: len(d) for layer, d in dims.items()}
        assert all(not set(drawn[layer]) & set(dims[layer]) for layer in dims)
        assert all(len(set(d)) == len(d) and all(0 <= x < found.d_model for x in d) for d in drawn.values())
    assert random_dims_like(dims, found.d_model, 0) == random_dims_like(dims, found.d_model, 0)
    assert random_dims_like(dims, found.d_model, 0) != random_dims_like(dims, found.d_model, 1)
    crowded = random_dims_like({0: list(range(20))}, 32, 0)  # too few others: drawn from all
    assert len(crowded[0]) == 20


def test_energy_matched_control_matches_count_and_energy_rank_and_avoids_the_networks():
    """Planted: a layer of 200 neurons with energy = rank, the chosen ones among the strongest.
    Each stand-in lies within the rank window of a chosen neuron, none is chosen, none repeats,
    the total energy is within a few percent, and a plain random draw of the same count has
    far less energy on average (the bias this control removes)."""
    energy = {3: np.arange(200, dtype=np.float64), 5: np.arange(200, dtype=np.float64)[::-1].copy()}
    dims = {3: [150, 170, 185, 190, 199], 5: [0, 1, 2]}
    plain_totals = []
    for seed in range(5):
        drawn = energy_matched_dims_like(dims, energy, seed)
        for layer, chosen in dims.items():
            assert len(drawn[layer]) == len(set(drawn[layer])) == len(chosen)
            assert not set(drawn[layer]) & set(chosen)
            ranks = np.argsort(np.argsort(energy[layer]))
            window = 10 + 2 * len(chosen)  # 5% of the width, widened by the chosen and the already drawn
            assert all(min(abs(ranks[d] - ranks[c]) for c in chosen) <= window for d in drawn[layer])
            total, matched = energy[layer][chosen].sum(), energy[layer][drawn[layer]].sum()
            assert abs(matched - total) / total < 0.06
        plain_totals.append(energy[3][random_dims_like({3: dims[3]}, 200, seed)[3]].sum())
    assert np.mean(plain_totals) < 0.85 * energy[3][dims[3]].sum()
    assert energy_matched_dims_like(dims, energy, 0) == energy_matched_dims_like(dims, energy, 0)
    assert energy_matched_dims_like(dims, energy, 0) != energy_matched_dims_like(dims, energy, 1)


def _hand_scores(subject, dims_by_layer: dict[int, list[int]] | None, keep: bool = False) -> np.ndarray:
    """Mean answer log-prob per item from HF logits, one unpadded item at a time, with the
    MLP outputs masked by hooks written here."""
    tokenizer = subject.tokenizer
    handles = []
    for layer, dims in (dims_by_layer or {}).items():
        def hook(module, args, output, dims=dims):
            out = output.clone()
            if keep:
                rest = [d for d in range(out.shape[-1]) if d not in dims]
                out[..., rest] = 0
            else:
                out[..., dims] = 0
            return out
        handles.append(subject.blocks[layer].mlp.register_forward_hook(hook))
    scores = []
    try:
        for item in ITEMS:
            prompt = tokenizer(item["prompt"])["input_ids"]
            answer = tokenizer(" " + item["answer"], add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + answer])
            with torch.no_grad():
                logprobs = torch.log_softmax(subject.model(ids).logits[0].double(), dim=-1)
            picked = [logprobs[len(prompt) - 1 + k, token] for k, token in enumerate(answer)]
            scores.append(float(torch.stack(picked).mean()))
    finally:
        for handle in handles:
            handle.remove()
    return np.array(scores)


def test_lesion_scores_equal_hand_computed_hf_log_probs(llama, found):
    """Oracle: HF logits per item with masks applied by hooks written here. Every condition's
    per-item scores match; the random rows use the drawn dims; the model is unchanged after.
    (Fails when the mask is not active while scoring, or with the keep-only mask inverted.)"""
    with torch.no_grad():
        untouched = llama.model(torch.tensor([[5, 6, 7, 8]])).logits
    result = network_lesion(llama, found, items=ITEMS, seeds=2, progress=False)
    assert result.groups == ["baseline", "masked", "random", "random", "energy-matched", "energy-matched",
                             "keep-only"]
    key = found.dims_by_block("key")
    np.testing.assert_allclose(result.scores[0], _hand_scores(llama, None), atol=1e-4)
    np.testing.assert_allclose(result.scores[1], _hand_scores(llama, key), atol=1e-4)
    for row, seed in ((2, 0), (3, 1)):
        drawn = random_dims_like(key, found.d_model, seed)
        np.testing.assert_allclose(result.scores[row], _hand_scores(llama, drawn), atol=1e-4)
    energy = dict(zip(found.blocks, found.energy))
    for row, seed in ((4, 0), (5, 1)):
        drawn = energy_matched_dims_like(key, energy, seed)
        np.testing.assert_allclose(result.scores[row], _hand_scores(llama, drawn), atol=1e-4)
    np.testing.assert_allclose(result.scores[6], _hand_scores(llama, key, keep=True), atol=1e-4)
    assert result.sizes[1] == int(found.key_mask.sum()) == result.sizes[2] == result.sizes[4]
    assert llama.interventions == ()
    with torch.no_grad():
        assert torch.equal(llama.model(torch.tensor([[5, 6, 7, 8]])).logits, untouched)
    table = result.table()
    assert list(table["dims"]) == [0] + [result.sizes[1]] * 4
    assert list(table["condition"])[3].startswith("random, same count and energy per layer (2 seeds)")
    assert table["spread_over_seeds"][2] == pytest.approx(result.means[2:4].std())


def test_lesion_round_trip_and_generate_mode(llama, found, tmp_path):
    result = network_lesion(llama, found, items=ITEMS, seeds=1, score="generate", max_new_tokens=3, progress=False)
    assert result.scores.shape == (5, 3) and ((result.scores >= 0) & (result.scores <= 1)).all()
    back = nm.load_result(result.save(tmp_path / "lesion.npz"))
    assert isinstance(back, LesionResult) and back.conditions == result.conditions
    np.testing.assert_array_equal(back.scores, result.scores)
    assert len(result.to_pandas()) == 15 and "keep-only key" in repr(result)


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": 0}, "at least 1"),
    ({"score": "vibes"}, "Unknown score"),
    ({"network": 7}, "networks 0-2"),
    ({"probe": "nope"}, "Unknown probe"),
])
def test_bad_lesion_input_is_one_line(llama, found, kwargs, message):
    with pytest.raises(NeuroMagicsError, match=message):
        network_lesion(llama, found, **{"items": ITEMS, **kwargs}, progress=False)
    assert llama.interventions == ()


def test_networks_found_on_another_model_are_refused(found):
    other = nm.Subject(tiny_model("llama", seed=1), tiny_tokenizer(), name="other")
    with pytest.raises(NeuroMagicsError, match="found on tiny-llama"):
        nm.mask_network(other, found, "key")


# -- magics -----------------------------------------------------------------------------------------------


@pytest.fixture
def loaded(shell):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    shell.neuro_magics_session.subject = subject
    shell.neuro_magics_session.networks = None
    yield shell, subject
    nm.reset_interventions(subject)
    shell.neuro_magics_session.networks = None


def test_networks_magic_then_ablate_network(loaded, capsys):
    shell, subject = loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuroMagicsWarning)
        result = shell.run_cell_magic("networks", "--components 3 --threshold 1.5 -o nets", "\n".join(TEXTS))
    assert isinstance(result, NetworksResult) and shell.user_ns["nets"] is result
    assert len(result.texts) == 30 and result.maps.shape == (3, 4, 32)  # one text per line: the dialogue is two
    shell.run_line_magic("ablate", "--network key --no-diff")
    assert len(subject.interventions) == 1 and "key networks" in repr(subject)
    assert subject.interventions[0].spec["arguments"]["mlp_dims"]
    shell.run_line_magic("ablate", "--network 0 --mode amplify --value 2 --from nets --no-diff")
    assert "add 2 to network 0" in repr(subject)
    shell.run_line_magic("ablate", "--reset")
    assert subject.interventions == ()


def test_networks_magic_with_lesion_returns_the_lesion(loaded):
    shell, subject = loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuroMagicsWarning)
        lesion = shell.run_cell_magic("networks", "--components 3 --threshold 1.5 --lesion --seeds 2 -o nets",
                                      "\n".join(TEXTS))
    assert isinstance(lesion, LesionResult) and shell.user_ns["nets_lesion"] is lesion
    assert lesion.groups == ["baseline", "masked", "random", "random", "energy-matched", "energy-matched", "keep-only"]
    assert lesion.metadata["probe"] == "facts" and subject.interventions == ()


@pytest.mark.parametrize("line, cell, message", [
    ("--blocks 0:9", "\n".join(TEXTS), "blocks 0-3"),
    ("--components 0", "\n".join(TEXTS), "at least 1"),
    ("--components 10", "Hi", "too few for 10 components"),
    ("--corpus builtin", "some text", "not both"),
    ("--threshold 20", "\n".join(TEXTS), "leaves no key neuron"),
    ("--lesion --probe nope", "\n".join(TEXTS), "Unknown probe"),
    ("-o 1x", "\n".join(TEXTS), "variable name"),
])
def test_bad_networks_magic_lines(loaded, line, cell, message):
    shell, subject = loaded
    with pytest.raises(UsageError, match=message) as error:
        shell.run_cell_magic("networks", line, cell)
    assert "\n" not in str(error.value) and subject.interventions == ()


@pytest.mark.parametrize("line, message", [
    ("--network key", "No networks yet"),
    ("--network key --from nothing", "no networks result"),
    ("--network key --heads 0.1", "masks a network alone"),
    ("--heads 0.1 --value 2", "go with --network"),
])
def test_bad_ablate_network_lines(loaded, line, message):
    shell, subject = loaded
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("ablate", line)
    assert subject.interventions == ()


# -- controls, generated answers and the table against hand computations --------------------------------


def test_energy_matched_control_follows_energy_rank_not_index():
    """Planted: energies shuffled over the neurons (rank and index unrelated), the chosen neurons the
    strongest and some of the weakest. Each stand-in's energy rank (by hand: argsort of argsort)
    lies within the window of a chosen neuron's, and the total energy matches within a few percent
    (fails with stand-ins chosen by index distance, which matches energies only when they are
    monotone in the index)."""
    rng = np.random.default_rng(11)
    energy = {0: rng.permutation(200).astype(np.float64) + 1.0, 2: rng.permutation(160).astype(np.float64) + 1.0}
    ranks = {layer: np.argsort(np.argsort(values)) for layer, values in energy.items()}
    dims = {0: [int(n) for n in np.flatnonzero(ranks[0] >= 195)] + [int(np.flatnonzero(ranks[0] == 3)[0])],
            2: [int(n) for n in np.flatnonzero((ranks[2] >= 155) | (ranks[2] == 80))]}
    for seed in range(4):
        drawn = energy_matched_dims_like(dims, energy, seed)
        for layer, chosen in dims.items():
            assert len(set(drawn[layer])) == len(chosen) and not set(drawn[layer]) & set(chosen)
            window = round(0.05 * len(energy[layer])) + len(chosen)
            assert all(min(abs(int(ranks[layer][d]) - int(ranks[layer][c])) for c in chosen) <= window
                       for d in drawn[layer]), (layer, seed)
            total, matched = energy[layer][chosen].sum(), energy[layer][drawn[layer]].sum()
            assert abs(matched - total) / total < 0.08


class _Masks:
    """Forward hooks written here that zero (or keep only) MLP-output dimensions per block."""

    def __init__(self, subject, dims_by_layer, keep=False):
        self.subject, self.dims, self.keep = subject, dims_by_layer or {}, keep

    def __enter__(self):
        def hook(module, args, output, dims):
            out = output.clone()
            chosen = torch.zeros(out.shape[-1], dtype=torch.bool)
            chosen[dims] = True
            out[..., ~chosen if self.keep else chosen] = 0
            return out
        self.handles = [self.subject.blocks[layer].mlp.register_forward_hook(
            lambda m, a, o, dims=list(dims): hook(m, a, o, dims)) for layer, dims in self.dims.items()]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def _hand_greedy(subject, prompt: str, n: int) -> str:
    """Greedy decoding by hand: full forwards of the unpadded prompt, argmax of the last logits."""
    ids = subject.tokenizer(prompt)["input_ids"]
    generated = []
    with torch.no_grad():
        for _ in range(n):
            generated.append(int(subject.model(torch.tensor([ids + generated])).logits[0, -1].argmax()))
    return subject.tokenizer.decode(generated, skip_special_tokens=True)


def test_generate_mode_grades_the_hand_generated_answers(llama, found, monkeypatch):
    """Oracle: each condition's answers decoded greedily by hand (one unpadded prompt at a time, the
    masks applied by hooks written here), graded by the item's scorer. The answers are set to the
    baseline's own first lines, so the baseline scores 1 where it answers at all (fails when the
    answer text keeps the prompt's last token, or the masks are off while generating)."""
    import neuro_magics.analyses.lesion as lesion
    from neuro_magics.core.probe_sets import credit, first_line, load_probe

    prompts = ["The cat sat on the", "Seven times eight is", "x = [i"]
    baseline = [_hand_greedy(llama, p, 4) for p in prompts]
    items = [{"prompt": p, "answer": first_line(text) or "zzz", "scorer": "match"} for p, text in zip(prompts, baseline)]
    seen = []
    monkeypatch.setattr(lesion, "credit", lambda item, text: (seen.append(text), credit(item, text))[1])
    result = network_lesion(llama, found, items=items, seeds=1, score="generate", max_new_tokens=4, progress=False)
    key = found.dims_by_block("key")
    energy = dict(zip(found.blocks, found.energy))
    masks = [None, key, random_dims_like(key, found.d_model, 0), energy_matched_dims_like(key, energy, 0), key]
    probe = load_probe("facts", items)
    assert result.groups == ["baseline", "masked", "random", "energy-matched", "keep-only"]
    expected_texts = []
    for row, dims in enumerate(masks):
        with _Masks(llama, dims, keep=row == 4):
            texts = [_hand_greedy(llama, p, 4) for p in prompts]
        expected_texts += texts
        expected = [credit(item, text) for item, text in zip(probe.items, texts)]
        np.testing.assert_array_equal(result.scores[row], expected)
    assert seen == expected_texts
    assert result.scores[0].tolist() == [1.0 if first_line(t) else 0.0 for t in baseline]
    assert set(expected_texts[3:]) != set(baseline)  # the masks change what the model says


def test_the_lesion_table_and_repr_by_hand():
    """Oracle: planted per-item scores (asymmetric across seeds): each group's mean, spread over seeds
    (population std of the seeds' means), change from the baseline and size, as the table and the
    repr print them (fails with the change taken the other way, or the seeds' scores pooled)."""
    scores = np.array([[-1.0, -2.0, -3.0],  # baseline: -2
                       [-5.0, -6.0, -10.0],  # masked: -7
                       [-2.0, -2.0, -2.0], [-4.0, -3.0, -2.0], [-1.0, -1.0, -4.0],  # random: -2, -3, -2
                       [-3.0, -3.0, -3.0], [-6.0, -6.0, -6.0],  # energy-matched: -3, -6
                       [-9.0, -8.0, -7.0]])  # keep-only: -8
    groups = ["baseline", "masked", "random", "random", "random", "energy-matched", "energy-matched", "keep-only"]
    conditions = ["baseline", "key masked", "random seed 0", "random seed 1", "random seed 2",
                  "energy-matched seed 0", "energy-matched seed 1", "keep-only key"]
    result = LesionResult(conditions, groups, [0, 12, 12, 12, 12, 12, 12, 12], scores, ["a", "b", "c"],
                          {"probe": "facts", "score": "logprob"})
    table = result.table()
    random_means, energy_means = np.array([-2.0, -3.0, -2.0]), np.array([-3.0, -6.0])
    np.testing.assert_allclose(table["score"], [-2.0, -7.0, random_means.mean(), -4.5, -8.0])
    np.testing.assert_allclose(table["change"], [0.0, -5.0, random_means.mean() + 2.0, -2.5, -6.0])
    np.testing.assert_allclose(table["spread_over_seeds"], [0, 0, random_means.std(), 1.5, 0])
    assert list(table["dims"]) == [0, 12, 12, 12, 12]
    assert list(table["condition"]) == ["baseline", "key masked", "random, same count per layer (3 seeds)",
                                        "random, same count and energy per layer (2 seeds)", "keep-only key"]
    lines = repr(result).splitlines()
    assert lines[0] == "LesionResult on probe facts (3 items, mean answer log-prob):"
    assert lines[2].split() == ["key", "masked", "-7.000", "(-5.000;", "12", "dims)"]
    assert lines[4].split()[-6:] == ["-4.500", "±", "1.500", "(-2.500;", "12", "dims)"]
