"""A tiny model split by accelerate over CPU and disk runs every analysis as the unsplit one.

Oracle: the same public call on the same weights loaded whole on the CPU (float32). Offloading
only moves where weights wait between forwards, so every number must agree to float32 noise
(1e-5), every array and field of each result (the full checkup with its findings, networks, the
lesion, project, language similarity, probe, trace, attribute, attribution patching, steer,
generate, an SAE trained and loaded, diff_models, LoRA training). A program saved with
``save_materialized`` and loaded back plainly gives the whole model's logits under the program.
Analyses that rewrite weights must refuse in one line and leave the model untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.surgery import _materialize
from neuro_magics.core.offload import offloaded_modules, parameter_values
from tiny_models import tiny_model, tiny_tokenizer

ATOL = 1e-5
DISK_BLOCKS = (1, 3)
ITEMS = [{"prompt": "ab", "answer": "cd"}, {"prompt": "The cat sat on the", "answer": "mat"}]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(split, whole): the same saved tiny Llama, blocks 1 and 3 on disk, the rest on CPU."""
    folder = tmp_path_factory.mktemp("tiny")
    tiny_model("llama").save_pretrained(folder / "model")
    tiny_tokenizer().save_pretrained(folder / "model")
    device_map = {"model.embed_tokens": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu",
                  **{f"model.layers.{b}": "disk" if b in DISK_BLOCKS else "cpu" for b in range(4)}}
    split = nm.load_model(str(folder / "model"), dtype="float32", device_map=device_map,
                          offload_folder=str(folder / "offload"))
    whole = nm.load_model(str(folder / "model"), device="cpu", dtype="float32")
    for subject in (split, whole):
        subject.model.generation_config.eos_token_id = None
    yield split, whole
    for subject in (split, whole):
        nm.reset_interventions(subject)


def test_the_split_really_offloads_blocks_to_disk(pair, tmp_path_factory):
    split, _ = pair
    offloaded = offloaded_modules(split.model)
    assert offloaded and all(any(f"layers.{b}." in name for b in DISK_BLOCKS) for name in offloaded)
    assert split.device.type == "cpu"


def _weights(subject) -> list[torch.Tensor]:
    """Every weight's value, offloaded ones read from disk (copies: accelerate drops them after)."""
    return [value.clone() for value in parameter_values(subject.model)]


def _same_weights(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _same(a, b, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=atol, rtol=0)


def test_scan_patch_and_brainscan_match_the_unsplit_model(pair):
    split, whole = pair
    scans = [nm.scan(s, "hello there", sites="resid,attn,mlp,neurons", lens=True, progress=False) for s in pair]
    for site in scans[1].captures:
        _same(scans[0].captures[site], scans[1].captures[site])
    _same(scans[0].top_probs, scans[1].top_probs)
    patches = [nm.patch(s, "ab cdefgh", "ab cdXfgh", ("e", "X"), progress=False) for s in pair]
    _same(patches[0].patched_metric, patches[1].patched_metric)
    scores = [nm.brainscan(s, items=ITEMS, layers="1:3", max_new_tokens=3, progress=False).scores for s in pair]
    assert np.array_equal(np.isnan(scores[0]), np.isnan(scores[1]))
    _same(np.nan_to_num(scores[0]), np.nan_to_num(scores[1]))


def test_a_layer_program_compare_and_an_intervention_match(pair):
    """Block 1 (on disk) runs twice; the ablation hooks an offloaded block."""
    diffs = [nm.compare(s, lambda s=s: s.program_applied([0, 1, 1, 2, 3]), ["ab cd", "the cat"], max_new_tokens=3)
             for s in pair]
    for side in ("before", "after"):
        a, b = getattr(diffs[0], side), getattr(diffs[1], side)
        assert np.array_equal(a.tokens, b.tokens)
        _same(a.logprobs, b.logprobs)
        _same(a.topk_probs, b.topk_probs)
    for subject in pair:
        nm.ablate(subject, heads="1.2,3.0")
    try:
        scans = [nm.scan(s, "ab cd", progress=False) for s in pair]
        _same(scans[0].captures["resid_post"], scans[1].captures["resid_post"])
    finally:
        for subject in pair:
            nm.reset_interventions(subject)


def test_the_runner_with_captures_and_edits_matches(pair):
    outputs = []
    for subject in pair:
        inputs = nm.prepare(subject, torch.tensor([[5, 17, 33, 8, 61, 9]]))
        edit = nm.Edit(step=2, site="resid_pre", op="add", value=torch.ones(32), positions=[3])
        outputs.append(nm.run(subject, inputs, program=[0, 1, 3, 3], edits=[edit], logits_at="all",
                              capture=nm.Capture(sites=("resid_post", "neurons", "heads"))))
    for site in outputs[1].captures:
        _same(outputs[0].captures[site], outputs[1].captures[site])
    _same(outputs[0].logits, outputs[1].logits)


def test_weight_reading_analyses_read_offloaded_weights(pair):
    """Weight views, checkup spectra and parameter reads load offloaded weights through accelerate."""
    views = [nm.weight_views(s) for s in pair]
    _same(views[0].norms, views[1].norms)
    _same(views[0].mlp_norms, views[1].mlp_norms)
    checkups = [nm.checkup(s, ["The cat sat on the mat.", "One two three."], max_texts=2, max_tokens=16) for s in pair]
    _same(checkups[0].alpha, checkups[1].alpha, atol=1e-4)
    assert _same_weights(_weights(pair[0]), _weights(pair[1]))
    assert offloaded_modules(pair[0].model)  # read, then dropped again


@pytest.mark.parametrize("action, message", [
    (lambda s: nm.edit(s, "{} plays the sport of", "Bob Smith", " golf", layer=1, diff=False), "Editing"),
    (lambda s: nm.prune(s, "magnitude", 0.5), "Pruning"),
    (lambda s: nm.quantize(s, 8, prompts=["ab"], max_new_tokens=2), "Quantizing"),
])
def test_weight_writing_analyses_refuse_in_one_line(pair, action, message):
    split, _ = pair
    before = _weights(split)
    with pytest.raises(nm.NeuroMagicsError, match=f"{message}.*offloaded") as error:
        action(split)
    assert "\n" not in str(error.value)
    assert _same_weights(_weights(split), before) and not split.interventions


def test_offload_folder_needs_a_device_map():
    with pytest.raises(nm.NeuroMagicsError, match="--device-map auto"):
        nm.load_model("unused", offload_folder="/tmp/x")


# -- every other analysis that runs the model ---------------------------------------------

TEXTS = ["The cat sat on the mat and looked at the door.", "x = [i * i for i in range(10)]",
         "A: Where is the station?\nB: Left after the bank.", "Seven times eight is fifty-six."] * 3
VOLATILE = {"seconds"}  # wall time


def _same_value(a, b, where: str, atol: float) -> None:
    """Recursive equality of result fields: numbers to ``atol``, the rest exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            if key not in VOLATILE:
                _same_value(a[key], b[key], f"{where}.{key}", atol)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, f"{where}[{k}]", atol)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, where
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), atol=atol, rtol=0, err_msg=where)
        else:
            assert np.array_equal(a, b), where
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=atol, nan_ok=True), where
    elif hasattr(a, "__dataclass_fields__"):
        _same_value(vars(a), vars(b), where, atol)
    else:
        assert a == b, where


def _same_result(a: nm.Result, b: nm.Result, atol: float = ATOL) -> None:
    """Every array and field of two results (metadata aside: it names the model's placement)."""
    _same_value(a._arrays(), b._arrays(), "arrays", atol)
    _same_value(a._fields(), b._fields(), "fields", atol)


def test_the_full_checkup_matches(pair):
    """Findings and every statistic, not only the spectra."""
    checkups = [nm.checkup(s, TEXTS, max_texts=6, max_tokens=16) for s in pair]
    assert checkups[1].findings
    _same_result(*checkups)


def test_networks_their_lesion_and_mask_match(pair):
    found = [nm.networks(s, TEXTS, components=3, threshold=1.5, progress=False) for s in pair]
    _same_result(*found)
    lesions = [nm.network_lesion(s, f, items=ITEMS, seeds=2, max_new_tokens=3, progress=False)
               for s, f in zip(pair, found)]
    _same_result(*lesions)
    try:
        for subject, networks in zip(pair, found):
            nm.mask_network(subject, networks, "key")
        scans = [nm.scan(s, "ab cd", progress=False) for s in pair]
        _same(scans[0].captures["resid_post"], scans[1].captures["resid_post"])
    finally:
        for subject in pair:
            nm.reset_interventions(subject)


def test_geometry_project_language_similarity_and_probe_match(pair):
    projections = [nm.project(s, TEXTS[:4], ["x", "y", "x", "y"], layers="1,3", clusters=2, progress=False)
                   for s in pair]
    _same_result(*projections)
    similarities = [nm.language_similarity(s, layers="0-3", progress=False) for s in pair]
    _same_result(*similarities)
    probes = [nm.probe(s, task="language", layers="1,3", cv=3, progress=False) for s in pair]
    _same_result(*probes)


def test_trace_and_attribute_match(pair):
    traces = [nm.trace(s, "The cat sat on the", "cat", samples=2, window=2, progress=False) for s in pair]
    _same_result(*traces)
    attributions = [nm.attribute(s, "The cat sat on the", method="all", steps=4, generate=2, progress=False)
                    for s in pair]
    _same_result(*attributions)
    patches = [nm.patch(s, "ab cdefgh", "ab cdXfgh", ("e", "X"), method="attribution", progress=False) for s in pair]
    _same_result(*patches)  # attribution patching: gradients through the offloaded blocks


def test_steer_vector_and_its_effect_on_generate_match(pair):
    """The contrast vector reads the stream entering offloaded block 1; generate runs HF's own
    loop with the KV cache through accelerate's hooks."""
    before = [nm.generate(s, "The cat", max_new_tokens=6) for s in pair]
    assert str(before[0]) == str(before[1]) and before[0].n_new_tokens == 6
    try:
        steering = [nm.steer(s, layer=1, coef=8.0, pos="I love this", neg="I hate this") for s in pair]
        _same(steering[0].vector, steering[1].vector)
        steered = [nm.generate(s, "The cat", max_new_tokens=6) for s in pair]
        assert str(steered[0]) == str(steered[1]) != str(before[1])
    finally:
        for subject in pair:
            nm.reset_interventions(subject)


def store(block) -> object:
    """accelerate's weight store behind an offloaded block's q_proj."""
    return block.self_attn.q_proj._hf_hook.weights_map.dataset


def test_surgery_programs_mergekit_and_save_materialized(pair, tmp_path):
    """A program from duplicate/drop runs the disk blocks like the whole model; the saved
    folder, loaded back plainly, gives the same logits as the whole model under that program."""
    ids = torch.tensor([[5, 17, 33, 8, 61, 9]])
    try:
        for subject in pair:
            nm.duplicate_layers(subject, 1, 3, diff=False)
            nm.drop_layers(subject, "0", diff=False)
        assert pair[0].program.steps == pair[1].program.steps == (1, 2, 1, 2, 3)
        logits = [nm.run(s, nm.prepare(s, ids), logits_at="all").logits for s in pair]
        _same(logits[0], logits[1])
        assert nm.mergekit_yaml(pair[0]) == nm.mergekit_yaml(pair[1])
        clone = _materialize(pair[0], pair[0].program)  # step 0 is disk block 1: its store is shared, not copied
        assert store(clone.model.layers[0]) is store(pair[0].blocks[1]) is store(clone.model.layers[2])
        del clone
        saved = nm.save_materialized(pair[0], tmp_path / "materialized")
        from transformers import AutoModelForCausalLM

        plain = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32)
        with torch.no_grad():
            _same(plain(input_ids=ids).logits, logits[1])
    finally:
        for subject in pair:
            nm.set_program(subject, "0-3", diff=False)
    assert offloaded_modules(pair[0].model)


def test_an_sae_trained_and_loaded_on_the_split_model_matches(pair, tmp_path):
    saes = [nm.train_sae(s, layer=1, texts=TEXTS, expansion=2, k=4, steps=5, batch_size=64, progress=False)
            for s in pair]
    _same_result(*saes)
    folder = saes[1].save_saelens(tmp_path / "sae")
    loaded = [nm.load_sae(s, folder, texts=TEXTS, progress=False) for s in pair]
    _same_result(*loaded)


def test_diff_models_matches(pair):
    """Program sides run the disk blocks twice; the weight diff reads offloaded weights."""
    diffs = [nm.diff_models(s, "original", "0-3,1-3", corpus=TEXTS[:3], max_tokens=12, progress=False) for s in pair]
    _same_result(*diffs)
    assert np.nanmax(diffs[1].kl) > 0


def test_lora_finetune_on_offloaded_blocks_matches_and_merging_refuses(pair, tmp_path):
    """The adapter's hooks sit on q_proj / v_proj of the disk blocks too; the frozen base is only
    read, so training matches the whole model's (loss, A and B to 1e-5 after 3 AdamW steps) and
    every parameter's requires_grad is as before (accelerate swaps an offloaded module's
    parameter objects on every forward). Merging would write into weights accelerate drops after
    each use: it refuses in one line."""
    before = _weights(pair[0])
    grads = [[p.requires_grad for p in s.model.parameters()] for s in pair]
    try:
        results = [nm.finetune(s, " ".join(TEXTS), steps=3, lr=1e-2, context=16, batch_size=2, progress=False)
                   for s in pair]
        _same(results[0].loss, results[1].loss)
        for name in results[1].adapter.A:
            _same(results[0].adapter.A[name], results[1].adapter.A[name])
            _same(results[0].adapter.B[name], results[1].adapter.B[name])
        assert float(results[1].adapter.B[next(iter(results[1].adapter.B))].abs().max()) > 0
        assert [[p.requires_grad for p in s.model.parameters()] for s in pair] == grads
        scans = [nm.scan(s, "ab cd", progress=False) for s in pair]
        _same(scans[0].captures["resid_post"], scans[1].captures["resid_post"])
        diffs = [nm.diff_models(s, "-adapter", "current", corpus=TEXTS[:2], max_tokens=12, probes=False,
                                progress=False) for s in pair]
        _same_result(*diffs)  # the weight change divides by the norm of the base weights read from disk
        assert np.count_nonzero(diffs[1].weight_change > 0) == 8  # q_proj and v_proj of the 4 blocks
        with pytest.raises(nm.NeuroMagicsError, match="Merging adapters.*offloaded") as error:
            nm.merge_adapters(pair[0])
        assert "\n" not in str(error.value)
        assert [i.spec for i in pair[0].interventions] == [i.spec for i in pair[1].interventions]
        folder = nm.save_adapter(pair[0], tmp_path / "adapter")
        for subject in pair:  # off and on, then the saved peft folder alone
            nm.adapters_off(subject)
            nm.adapters_on(subject)
            nm.remove_adapters(subject)
            nm.load_adapter(subject, folder)
        reloaded = [nm.scan(s, "ab cd", progress=False) for s in pair]
        _same(reloaded[0].captures["resid_post"], scans[1].captures["resid_post"])
        _same(reloaded[1].captures["resid_post"], scans[1].captures["resid_post"])
    finally:
        for subject in pair:
            nm.remove_adapters(subject)
            nm.reset_interventions(subject)
    assert _same_weights(_weights(pair[0]), before)


# -- hooks on blocks that live on another device (what a model spread over GPUs does) -------------


def _spread_to_meta(subject: nm.Subject) -> None:
    """Blocks 2-3, the final norm and the head on the meta device, each behind accelerate's own
    ``AlignDevicesHook`` (what ``device_map`` over several GPUs installs): a block's inputs are
    moved to its device and its outputs stay there. Meta stands in for a second GPU: mixing it
    with CPU tensors raises exactly as cuda:0 with cuda:1 does."""
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    model = subject.model
    for module in (*subject.blocks[2:], model.model.norm, model.lm_head):
        module.to("meta")
        add_hook_to_module(module, AlignDevicesHook(execution_device="meta", io_same_device=False))


def _sae(subject: nm.Subject):
    return nm.train_sae(subject, layer=2, expansion=1, k=2, texts=["the cat sat", "a dog ran", "one two"], steps=2,
                        batch_size=8, progress=False)


SPREAD_INTERVENTIONS = {
    "ablate heads (mean)": lambda s: nm.ablate(s, heads="2.1,3.0", mode="mean"),
    "ablate a layer (mean)": lambda s: nm.ablate(s, layers="3", mode="mean"),
    "ablate neurons (mean)": lambda s: nm.ablate(s, neurons="3:5", mode="mean"),
    "steer": lambda s: nm.steer(s, layer=3, coef=1.0, vector=np.ones(s.d_model, dtype=np.float32)),
    "mask MLP dims": lambda s: nm.mask_mlp_dims(s, {3: [1, 2]}, mode="amplify", value=2.0),
    "SAE feature ablation": lambda s: _sae(s).ablate(s, 0),
    "LoRA adapter": lambda s: s.add_intervention(_random_lora(s)),
    "checkup's massive-activation fix": lambda s: s.add_intervention(_massive_fix(
        s, {"blocks": [{"block": 3, "dims": [1, 4], "values": [0.0, 0.5], "threshold": 0.0}]}, "clamp")),
}


def _random_lora(subject: nm.Subject):
    from neuro_magics.analyses.finetune import adapter_intervention
    from test_finetune import random_adapter

    return adapter_intervention(subject, random_adapter(subject))


def _massive_fix(*args):
    from neuro_magics.analyses.checkup import _massive_fix as fix

    return fix(*args)


@pytest.mark.parametrize("name", list(SPREAD_INTERVENTIONS))
def test_intervention_hooks_run_on_blocks_on_another_device(name):
    """Each hook's own tensors (means, vectors, the SAE, LoRA factors, clamp values) were made on
    the model's first device; on a block elsewhere the hook must move them there (fails with a
    device error without the move, as the steering, mean-ablation, SAE and clamp hooks did).
    Meta's matmul kernels do not check devices, so a LoRA factor left behind is not caught here."""
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    SPREAD_INTERVENTIONS[name](subject)  # made while every block is on the CPU
    _spread_to_meta(subject)
    logits = subject.model(torch.tensor([[3, 4, 5, 6]]), use_cache=False).logits
    assert logits.device.type == "meta" and logits.shape == (1, 4, subject.vocab_size)
