"""A *block* is an original layer, a *step* a position in the layer program. Under the
duplicated program 0,1,2,3,2,3,4 of a tiny 5-block Llama (step 5 runs block 3, step 6 block 4)
each analysis reads or changes the one it names: checked against the program's blocks deep-copied
into a plain HF model in program order, hand-written hooks on an untouched model of the same
seed, or a planted causal-tracing peak. The old word "layer" is refused there in one line before
any block runs, and keeps working under the identity program."""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaConfig

import neuro_magics as nm
from neuro_magics.core.errors import NeuroMagicsError
from neuro_magics.core.reading import CONTRAST_PREFIX
from test_bad_input import CountForwards, one_line
from test_networks import hf_mlp_outputs
from tiny_models import tiny_tokenizer

PROGRAM = (0, 1, 2, 3, 2, 3, 4)
DATA = [("the cat sat", "a"), ("a dog ran off far", "b"), ("one two", "a"), ("zz top band!", "b"),
        ("xy", "a"), ("hello there you", "b")]
TEXTS = [text for text, _ in DATA]
ITEMS = [{"prompt": "ab", "answer": "cd"}, {"prompt": "The cat sat on the", "answer": "mat"}]


def five_block_llama() -> nn.Module:
    """The same random weights on every call (fixed seed)."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=5,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    config._attn_implementation = "eager"
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()


@pytest.fixture
def duplicated() -> nm.Subject:
    subject = nm.Subject(five_block_llama(), tiny_tokenizer())
    subject.set_program(PROGRAM)
    return subject


def copied(program) -> nn.Module:
    """The program as a plain HF model: an untouched model's blocks deep-copied in program order."""
    model = five_block_llama()
    clone = copy.deepcopy(model)
    clone.model.layers = nn.ModuleList(copy.deepcopy(model.model.layers[block]) for block in program)
    for step, block in enumerate(clone.model.layers):
        block.self_attn.layer_idx = step
    clone.config.num_hidden_layers = len(program)
    if getattr(clone.config, "layer_types", None) is not None:
        clone.config.layer_types = [model.config.layer_types[block] for block in program]
    return clone


def text_means_entering(model: nn.Module, step: int) -> np.ndarray:
    """Per text, the mean over its own tokens (after the one-token prefix) of the stream entering ``step``."""
    tokenizer, rows = tiny_tokenizer(), []
    for text in TEXTS:
        ids = tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = model(ids, output_hidden_states=True, use_cache=False).hidden_states
        rows.append(hidden[step][0, 1:].double().mean(0))
    return torch.stack(rows).numpy()


def block_parameters(subject: nm.Subject) -> dict[str, torch.Tensor]:
    return {f"{b}.{name}": p.detach().clone() for b, block in enumerate(subject.blocks)
            for name, p in block.named_parameters()}


# -- the old word, refused where it is ambiguous ------------------------------------------------------


@pytest.mark.parametrize("call, old, new", [
    (lambda s: nm.probe(s, DATA, layers="5", cv=2, progress=False), "--layers", "--steps"),
    (lambda s: nm.project(s, TEXTS, layers="5", progress=False), "--layers", "--steps"),
    (lambda s: nm.language_similarity(s, [("ab", "cd"), ("ef", "gh")], layers="5", progress=False), "--layers",
     "--steps"),
    (lambda s: nm.prune(s, "layers", drop=2), "--method layers", "--method steps"),
    (lambda s: nm.prune(s, "steps", drop=2), "--drop", "--drop-steps"),
    (lambda s: nm.edit(s, "{} lives in", "Ann Lee", " Rome", layer=4, diff=False), "--layer", "--block"),
    (lambda s: nm.edit(s, "{} lives in", "Ann Lee", " Rome", layer="auto", diff=False), "--layer", "--block"),
    (lambda s: nm.quantize(s, 4, layers="0-1", diff=False), "--layers", "--blocks"),
    (lambda s: nm.networks(s, TEXTS, components=2, layers="3:5", progress=False), "--layers", "--blocks"),
    (lambda s: nm.scan(s, "the cat sat", layers="5", progress=False), "--layers", "--steps"),
    (lambda s: nm.ablate(s, layers="4"), "--layers", "--blocks"),
    (lambda s: nm.steer(s, layer=4, coef=1.0, vector=torch.ones(32)), "--layer", "--block"),
    (lambda s: nm.brainscan(s, items=ITEMS, layers="3:5", progress=False), "--layers", "--blocks"),
])
def test_the_old_word_is_refused_in_one_line_before_any_work(duplicated, call, old, new):
    weights = block_parameters(duplicated)
    with pytest.raises(NeuroMagicsError) as info, CountForwards(duplicated) as forwards:
        call(duplicated)
    assert str(info.value) == (f"{old} is ambiguous under the program 0-3,2-4, where a block (an original layer) and "
                               f"a step (a position in the program) differ: say {new}.")
    assert forwards.calls == 0 and duplicated.program.steps == PROGRAM and not duplicated.interventions
    assert all(torch.equal(p, weights[name]) for name, p in block_parameters(duplicated).items())


def test_under_the_identity_program_the_old_word_is_the_new_one_and_not_both():
    subject = nm.Subject(five_block_llama(), tiny_tokenizer())
    old = nm.probe(subject, DATA, layers="1,3", kind="massmean", cv=2, progress=False)
    new = nm.probe(subject, DATA, steps="1,3", kind="massmean", cv=2, progress=False)
    assert old.steps == new.steps == old.blocks == [1, 3] and old.best_layer == new.best_step
    np.testing.assert_array_equal(old.class_means, new.class_means)
    with pytest.raises(NeuroMagicsError, match=re.escape("Give --steps or --layers, not both")):
        nm.probe(subject, DATA, layers="1", steps="1", cv=2, progress=False)
    with pytest.raises(NeuroMagicsError, match=re.escape("Give --blocks or --layers, not both")):
        nm.quantize(subject, 4, blocks="1", layers="1", diff=False)


# -- steps: probes, projections, pruning --------------------------------------------------------------


def test_the_probe_reads_the_step_and_names_the_block_it_ran(duplicated):
    """Oracle: the stream entering steps 1 and 5 of the deep-copied program (step 5 runs block 3;
    reading step 3, or block 3's first run, gives other class means)."""
    result = nm.probe(duplicated, DATA, steps=[1, 5], kind="massmean", cv=2, progress=False)
    labels = np.array([label for _, label in DATA])
    reference = copied(PROGRAM)
    for k, step in enumerate((1, 5)):
        means = text_means_entering(reference, step)
        np.testing.assert_allclose(result.class_means[k], [means[labels == "a"].mean(0), means[labels == "b"].mean(0)],
                                   rtol=1e-4, atol=1e-5)
    assert result.steps == [1, 5] and result.blocks == [1, 3] and result.block_of(5) == 3
    frame = result.to_pandas()
    assert list(frame["step"]) == [1, 5] and list(frame["block"]) == [1, 3]
    assert result.best_block == PROGRAM[result.best_step]
    assert np.array_equal(result.direction[5], result.direction_to("b")[5])
    with pytest.raises(NeuroMagicsError, match="No direction to 'b' at step 3: this probe has steps"):
        result.direction[3]


def test_the_projection_maps_the_step_and_names_its_block(duplicated):
    """Oracle: numpy PCA of the deep-copied program's stream entering step 5 (block 3's second run)."""
    result = nm.project(duplicated, TEXTS, steps=[1, 5], site="resid_pre", unit="text", progress=False)
    for k, step in enumerate((1, 5)):
        vectors = text_means_entering(copied(PROGRAM), step)
        singular = np.linalg.svd(vectors - vectors.mean(0), compute_uv=False)
        np.testing.assert_allclose(result.explained[k], singular[:2] ** 2 / np.sum(singular ** 2), rtol=1e-3)
    frame = result.to_pandas()
    assert sorted(set(zip(frame["step"], frame["block"]))) == [(1, 1), (5, 3)]
    assert result.step_index(5) == 1


def test_pruning_drops_steps_of_lowest_block_influence_and_names_their_blocks(duplicated):
    """Oracle: Block Influence 1 - cos(x_s, x_{s+1}) of each step of the deep-copied program,
    by hand from its hidden states (the last step's output from a hook, before the final norm)."""
    from neuro_magics.analyses.pruning import calibration_passages

    reference, outputs = copied(PROGRAM), []
    handle = reference.model.layers[-1].register_forward_hook(lambda m, a, o: outputs.append(o[0] if isinstance(o, tuple) else o))
    influence, count = 0.0, 0
    with torch.no_grad():
        for passage in calibration_passages():
            ids = duplicated.tokenizer(passage, return_tensors="pt")["input_ids"][:, :duplicated.context_length]
            hidden = reference(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
            states = torch.stack([*hidden[:-1], outputs.pop()])[:, 0].double()
            influence = influence + (1 - torch.nn.functional.cosine_similarity(states[:-1], states[1:], dim=-1)).sum(-1)
            count += ids.shape[1]
    handle.remove()
    influence = (influence / count).numpy()

    almost_all = nm.prune(duplicated, "steps", drop_steps=6, install=False)  # drops steps that ran other blocks
    kept = int(np.argmax(influence))
    assert almost_all.dropped_steps == [k for k in range(7) if k != kept]
    assert almost_all.dropped_blocks == [PROGRAM[k] for k in range(7) if k != kept]
    with pytest.raises(NeuroMagicsError, match="dropped is ambiguous: .* use dropped_steps or dropped_blocks"):
        almost_all.dropped
    frame = almost_all.to_pandas()
    assert list(frame["step"]) == list(range(7)) and list(frame["block"]) == list(PROGRAM)

    lowest = sorted(np.argsort(influence, kind="stable")[:2].tolist())
    result = nm.prune(duplicated, "steps", drop_steps=2)
    np.testing.assert_allclose(result.block_influence, influence, rtol=1e-4, atol=1e-6)
    assert result.dropped_steps == lowest and result.dropped_blocks == [PROGRAM[k] for k in lowest]
    assert duplicated.program.steps == tuple(block for k, block in enumerate(PROGRAM) if k not in lowest)
    assert f"dropped steps {lowest} (blocks {[PROGRAM[k] for k in lowest]})" in repr(result)


def test_the_scan_keeps_the_steps_it_names(duplicated):
    """Oracle: the deep-copied program's hidden states: the stream leaving step 5 (block 3's
    second run) and entering step 4 (block 2's second run)."""
    result = nm.scan(duplicated, "the cat sat", sites="resid", steps="4-5", progress=False)
    ids = duplicated.encode("the cat sat")["input_ids"]
    with torch.no_grad():
        hidden = copied(PROGRAM)(ids, output_hidden_states=True, use_cache=False).hidden_states
    np.testing.assert_allclose(result.captures["resid_pre"], torch.stack([hidden[4][0], hidden[5][0]]).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.captures["resid_post"], torch.stack([hidden[5][0], hidden[6][0]]).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert result.steps == [4, 5] and result.blocks == [2, 3]


# -- blocks: editing, rounding, networks, ablation, steering, brain scans -------------------------------


def _logits_of(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


def test_an_ablated_block_loses_its_contributions_at_every_step_that_runs_it(duplicated):
    """Oracle: the deep-copied program with hooks written here zeroing the attention and MLP
    outputs of the copies of block 4 (step 6 only; step 4 runs block 2)."""
    ids = duplicated.encode("the cat sat on")["input_ids"]
    nm.ablate(duplicated, blocks="4")
    reference = copied(PROGRAM)
    zero = lambda module, args, output: ((torch.zeros_like(output[0]), *output[1:]) if isinstance(output, tuple)  # noqa: E731
                                        else torch.zeros_like(output))
    for step in (k for k, block in enumerate(PROGRAM) if block == 4):
        reference.model.layers[step].self_attn.register_forward_hook(zero)
        reference.model.layers[step].mlp.register_forward_hook(zero)
    torch.testing.assert_close(_logits_of(duplicated.model, ids), _logits_of(reference, ids), rtol=1e-5, atol=1e-5)
    assert "blocks 4" in duplicated.interventions[-1].description


@pytest.mark.parametrize("block", [4, 3])
def test_steering_adds_into_the_block_it_names_at_every_step_that_runs_it(duplicated, block):
    """Oracle: the deep-copied program with a pre-hook written here adding the vector to the
    input of every copy of the block (block 3: steps 3 and 5; block 4: step 6, not step 4)."""
    ids = duplicated.encode("the cat sat on")["input_ids"]
    vector = torch.linspace(-1.0, 2.0, 32)
    nm.steer(duplicated, block=block, coef=0.1, vector=vector)
    reference = copied(PROGRAM)

    def add(module, args, kwargs):
        if args:
            return (args[0] + 0.1 * vector, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] + 0.1 * vector}

    for step in (k for k, b in enumerate(PROGRAM) if b == block):
        reference.model.layers[step].register_forward_pre_hook(add, with_kwargs=True)
    torch.testing.assert_close(_logits_of(duplicated.model, ids), _logits_of(reference, ids), rtol=1e-5, atol=1e-5)


def test_a_brain_scan_under_a_duplicated_program_sweeps_the_blocks_it_names(duplicated):
    """Oracle: the (i, j) configs are duplications of the plain model: cell (3, 5) equals the
    baseline plus the score change of the deep-copied program 0-4,3-4 scored by hand."""
    result = nm.brainscan(duplicated, items=ITEMS, blocks="3:5", progress=False)
    assert result.complete and result.metadata["layers"] == [3, 5] and duplicated.program.steps == PROGRAM

    def mean_logprob(model):
        total = []
        for item in ITEMS:
            prompt = duplicated.tokenizer(item["prompt"], return_tensors="pt")["input_ids"]
            answer = duplicated.tokenizer(" " + item["answer"], add_special_tokens=False,  # after a space, as scored
                                          return_tensors="pt")["input_ids"]
            logits = _logits_of(model, torch.cat([prompt, answer], dim=1))[0, prompt.shape[1] - 1:-1]
            total.append(float(torch.log_softmax(logits.double(), -1).gather(1, answer[0][:, None]).mean()))
        return np.mean(total)

    plain, duplicated_3_5 = mean_logprob(copied(range(5))), mean_logprob(copied((0, 1, 2, 3, 4, 3, 4)))
    assert result.baseline == pytest.approx(plain, abs=1e-4)
    assert result.delta[3, 5] == pytest.approx(duplicated_3_5 - plain, abs=1e-4)




def test_an_edit_changes_the_block_it_names_wherever_it_runs(duplicated):
    """Oracle: the parameters themselves: only block 3's MLP down projection changes, by a
    rank-one update. Under 0,1,2,1,2,3,4 block 3 runs at step 5 and step 3 runs block 1 (the
    last block is no use here: its MLP at the subject's token never reaches the prediction)."""
    duplicated.set_program((0, 1, 2, 1, 2, 3, 4))
    before = block_parameters(duplicated)
    result = nm.edit(duplicated, "{} lives in", "Ann Lee", " Rome", block=3, diff=False)
    after = block_parameters(duplicated)
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed == ["3.mlp.down_proj.weight"]
    assert torch.linalg.matrix_rank((after[changed[0]] - before[changed[0]]).double(), rtol=1e-6) == 1
    assert result.block == 3 and "ROME at block 3" in duplicated.interventions[-1].description
    with pytest.raises(NeuroMagicsError, match="layer is ambiguous: .* use block"):
        result.layer


@pytest.mark.parametrize("peak_step, block", [(5, 3), (6, 4), (2, 2)])
def test_the_traced_block_is_the_one_that_ran_the_peak_step(duplicated, monkeypatch, peak_step, block):
    """Oracle: a planted causal-tracing map whose MLP effect peaks at one step."""
    import neuro_magics.analyses.tracing as tracing
    from neuro_magics.analyses.editing import traced_block

    effect = np.zeros((len(tracing.TRACE_SITES), len(PROGRAM), 4))
    effect[tracing.TRACE_SITES.index("mlp_out"), peak_step, 2] = 1.0
    effect[tracing.TRACE_SITES.index("mlp_out"), block, 1] = 2.0  # another position: not the subject's last token
    planted = SimpleNamespace(metadata={}, effect=effect, subject_positions=[1, 2])
    monkeypatch.setattr(tracing, "trace", lambda *args, **kwargs: planted)
    assert traced_block(duplicated, "Ann Lee lives in", "Ann Lee") == block


def test_rounding_acts_on_the_blocks_it_names(duplicated):
    """Oracle: block 4's linear weights listed from the module tree, and their per-row absmax
    int4 rounding error by hand."""
    result = nm.quantize(duplicated, 4, blocks="4", diff=False)
    linears = {f"4.{name}": module.weight for name, module in duplicated.blocks[4].named_modules()
               if isinstance(module, nn.Linear)}
    assert sorted(result.matrices) == sorted(linears)
    for name, error in zip(result.matrices, result.errors):
        weight = linears[name].detach().double()
        scale = weight.abs().amax(dim=1, keepdim=True) / 7
        by_hand = torch.linalg.matrix_norm(weight - (weight / scale).round().clamp(-7, 7) * scale) / torch.linalg.matrix_norm(weight)
        assert error == pytest.approx(float(by_hand), rel=1e-4)
    assert result.metadata["blocks"] == [4]


def test_networks_read_the_blocks_they_name(duplicated, monkeypatch):
    """Oracle: hooks written in the test on blocks 3 and 4's MLPs of an untouched model of the same
    seed (identity program), one text at a time: the signals ICA sees (reading steps 3 and 4 of
    the duplicated program would give blocks 3 and 2)."""
    import neuro_magics.analyses.networks as module

    seen, decompose = {}, module.decompose

    def keep(signals, components, **kwargs):
        seen["signals"] = signals.copy()
        return decompose(signals, components, **kwargs)

    monkeypatch.setattr(module, "decompose", keep)
    found = nm.networks(duplicated, TEXTS, components=2, threshold=1.5, blocks="3:5", standardize=False, progress=False)
    expected = hf_mlp_outputs(nm.Subject(five_block_llama(), tiny_tokenizer()), TEXTS, (3, 4))
    np.testing.assert_allclose(seen["signals"], expected, atol=1e-6, rtol=1e-5)
    assert found.blocks == [3, 4] and set(found.to_pandas()["block"]) <= {3, 4}
    assert duplicated.program.steps == PROGRAM


# -- the magics -------------------------------------------------------------------------------------------


SHELL_PROGRAM = (0, 1, 2, 3, 2, 3)  # the shell's tiny model has 4 blocks: step 4 runs block 2


@pytest.mark.parametrize("magic, line, cell, old", [
    ("probe", "--task language --layers 4 --cv 2", None, "--layers"),
    ("project", "--layers 4", "the cat\na dog\none two", "--layers"),
    ("prune", "--method layers --drop 1", None, "--method layers"),
    ("prune", "--method steps --drop 1", None, "--drop"),
    ("edit", '--prompt "{} lives in" --subject "Ann Lee" --target " Rome" --layer 2 --no-diff', None, "--layer"),
    ("weights", "--quantize 4 --layers 0-1", None, "--layers"),
    ("networks", "--layers 0:2", "\n".join(TEXTS), "--layers"),
    ("scan", "--layers 4", "the cat", "--layers"),
    ("ablate", "--layers 2 --no-diff", None, "--layers"),
    ("steer", "--pos Love --neg Hate --layer 2 --coef 1 --no-diff", None, "--layer"),
    ("brainscan", "--layers 2:4", None, "--layers"),
])
def test_the_magics_refuse_the_old_word_under_a_duplicated_program(shell, tiny_in_shell, magic, line, cell, old):
    tiny_in_shell.set_program(SHELL_PROGRAM)
    one_line(shell, tiny_in_shell, f"^{re.escape(old)} is ambiguous under the program 0-3,2-3, .*: say --",
             magic, line, cell, runs_nothing=True)


def test_the_magics_take_the_explicit_words(shell, tiny_in_shell):
    tiny_in_shell.set_program(SHELL_PROGRAM)
    assert shell.run_line_magic("probe", "--task language --steps 4 --cv 2").blocks == [2]
    assert shell.run_cell_magic("project", "--steps 5", "the cat\na dog\none two").blocks == [3]
    assert shell.run_line_magic("weights", "--quantize 4 --blocks 1 --max-new-tokens 1").metadata["blocks"] == [1]
    assert shell.run_line_magic(
        "edit", '--prompt "{} lives in" --subject "Ann Lee" --target " Rome" --block 2 --no-diff').block == 2
    shell.run_line_magic("edit", "--reset")
    pruned = shell.run_line_magic("prune", "--method steps --drop-steps 1")
    assert len(tiny_in_shell.program) == 5 and pruned.dropped_blocks == [SHELL_PROGRAM[pruned.dropped_steps[0]]]
