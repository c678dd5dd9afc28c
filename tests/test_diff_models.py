"""%diff_models (ORACLES.md rows 32-33).

Oracles: a model diffed with itself is exactly 0 everywhere; KL from two plain HF forwards of
each text alone (torch's ``kl_div``), one of a deepcopy with the update merged by hand; drift
from the test's own forward hooks on the blocks; the PCA from numpy's SVD; the weight change
of a LoRA as ``||alpha / r * B @ A|| / ||W||`` by hand and its rank r; a second checkpoint
saved with ``save_pretrained``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError
import test_finetune as finetune_tests
from tiny_models import tiny_model, tiny_tokenizer

import neuro_magics as nm
from neuro_magics.analyses import finetune as ft
from neuro_magics.analyses import model_diff
from neuro_magics.core.adapters import weight_matrix

TEXTS = ["The cat sat on the mat and looked out of the window.", "2 + 2 = 4, and 3 * 3 = 9.",
         "def add(a, b):\n    return a + b"]


@pytest.fixture(autouse=True)
def adapter_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path / "cache"))


def llama() -> nm.Subject:
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def random_adapter(subject: nm.Subject, rank: int = 3) -> ft.LoraAdapter:
    """test_finetune's random adapter, rank 3 with alpha 2 x rank."""
    return finetune_tests.random_adapter(subject, rank=rank, alpha=2.0 * rank)


def state(subject: nm.Subject, ids: torch.Tensor):
    with torch.no_grad():
        return subject.program, subject.interventions, subject.model(ids).logits


def test_a_model_diffed_with_itself_is_exactly_zero(token_ids):
    """Oracle: identity. Also under a program, a steering vector and a LoRA; the state is kept."""
    subject = llama()
    subject.set_program([0, 1, 1, 2, 3])
    nm.steer(subject, block=1, coef=2.0, vector=torch.ones(32))
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    program, interventions, logits = state(subject, token_ids)
    result = nm.diff_models(subject, "current", "current", corpus=TEXTS, progress=False)
    assert np.all(result.kl[np.isfinite(result.kl)] == 0) and result.n_tokens == sum(
        len(subject.tokenizer(t)["input_ids"]) for t in TEXTS)
    assert np.all(result.drift_l2 == 0) and np.all(result.drift_relative == 0) and np.all(result.drift_pca == 0)
    assert np.allclose(result.drift_cosine, 1, atol=1e-6) and len(result.drift_l2) == 5
    assert np.all(result.weight_change == 0) and np.all(result.weight_rank == 0)
    assert np.array_equal(result.probe_a, result.probe_b)
    after = state(subject, token_ids)
    assert after[0] == program and after[1] == interventions and torch.equal(after[2], logits)


def test_kl_and_drift_equal_hand_computations_from_hf_forwards():
    """Oracle: each text alone through (A) the model without the adapter and (B) a deepcopy with
    the update merged by hand; KL by ``torch.nn.functional.kl_div``; the residual drift from the
    test's own forward hooks on the blocks, first token left out; the PCA by numpy's SVD
    (fails with KL(B || A), or the drift a layer off, or the first token kept)."""
    subject = llama()
    adapter = random_adapter(subject)
    merged = copy.deepcopy(subject.model)
    with torch.no_grad():
        for name in adapter.targets:
            weight_matrix(merged.get_submodule(ft.module_path(subject, name))).add_(adapter.delta(name))
    ft.adapter_intervention(subject, adapter).install(subject)
    result = nm.diff_models(subject, "-adapter", "current", corpus=TEXTS, progress=False, probes=False)
    nm.remove_adapters(subject)

    def forward(model, ids):
        outputs = []
        handles = [block.register_forward_hook(lambda m, a, o: outputs.append(o[0] if isinstance(o, tuple) else o))
                   for block in model.model.layers]
        try:
            with torch.no_grad():
                logits = model(ids).logits[0]
        finally:
            for handle in handles:
                handle.remove()
        return logits, torch.stack(outputs)[:, 0]

    differences, l2, relative, cosine = [], [], [], []
    for k, text in enumerate(TEXTS):
        ids = subject.tokenizer(text, return_tensors="pt")["input_ids"]
        logits_a, states_a = forward(subject.model, ids)
        logits_b, states_b = forward(merged, ids)
        expected = torch.nn.functional.kl_div(logits_b.log_softmax(-1), logits_a.log_softmax(-1), log_target=True,
                                              reduction="none").sum(-1)
        np.testing.assert_allclose(result.kl[k, :ids.shape[1]], expected.numpy(), rtol=1e-4, atol=1e-6)
        assert np.isnan(result.kl[k, ids.shape[1]:]).all()
        a, b = states_a[:, 1:].double(), states_b[:, 1:].double()
        differences.append((b - a).numpy())
        l2.append((b - a).norm(dim=-1))
        relative.append((b - a).norm(dim=-1) / a.norm(dim=-1))
        cosine.append(torch.nn.functional.cosine_similarity(a, b, dim=-1))
    assert result.mean_kl > 1e-4
    np.testing.assert_allclose(result.drift_l2, torch.cat(l2, 1).mean(1).numpy(), rtol=1e-4)
    np.testing.assert_allclose(result.drift_relative, torch.cat(relative, 1).mean(1).numpy(), rtol=1e-4)
    np.testing.assert_allclose(result.drift_cosine, torch.cat(cosine, 1).mean(1).numpy(), rtol=1e-4, atol=1e-6)
    for step in range(4):
        rows = np.concatenate([d[step] for d in differences])
        values = np.linalg.svd(rows - rows.mean(0), compute_uv=False) ** 2
        np.testing.assert_allclose(result.drift_pca[step], values[:5] / values.sum(), rtol=1e-3, atol=1e-6)
    top = result.top_tokens(3)
    assert top[0]["kl"] == np.nanmax(result.kl) and top[0]["kl"] >= top[1]["kl"] >= top[2]["kl"]


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("merged", [False, True])
def test_weight_change_of_a_lora_is_its_update_by_hand_and_its_rank(rank, merged):
    """Oracle: ``||alpha / r * B @ A||_F / ||W||_F`` in numpy and rank r, for the hooked and the
    merged adapter (fails with the hooked update left out, or the rank counted with no tolerance
    for the merged weights' float rounding)."""
    subject = llama()
    adapter = random_adapter(subject, rank=rank)
    weights = {name: weight_matrix(m).detach().double().numpy().copy() for name, m in subject.block_matrices().items()}
    ft.adapter_intervention(subject, adapter).install(subject)
    if merged:
        nm.merge_adapters(subject)
    result = nm.diff_models(subject, "-adapter", "current", corpus=TEXTS[:1], progress=False, probes=False)
    assert [i.kind for i in subject.interventions] == ["lora_merged" if merged else "lora"]
    for name, change, found_rank in zip(result.matrices, result.weight_change, result.weight_rank):
        if name in adapter.A:
            update = adapter.alpha / rank * adapter.B[name].double().numpy() @ adapter.A[name].double().numpy()
            expected = np.linalg.norm(update) / np.linalg.norm(weights[name])
            np.testing.assert_allclose(change, expected, rtol=1e-5 if merged else 1e-6)
            assert found_rank == rank, name
        else:
            assert change == 0 and found_rank == 0, name


def test_layer_program_side_against_hf_under_that_program():
    """Oracle: KL of HF forwards with the program applied by the test; weights unchanged."""
    subject = llama()
    result = nm.diff_models(subject, "original", "0-3,1-3", corpus=TEXTS[:2], progress=False, probes=False)
    assert result.steps == (4, 7) and len(result.drift_l2) == 4
    assert np.all(result.weight_change == 0)
    assert np.all(result.drift_l2 == 0)  # the first 4 steps run blocks 0-3 on both sides
    for k, text in enumerate(TEXTS[:2]):
        ids = subject.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            a = subject.model(ids).logits[0].log_softmax(-1)
            with subject.program_applied([0, 1, 2, 3, 1, 2, 3]):
                b = subject.model(ids).logits[0].log_softmax(-1)
        expected = (a.exp() * (a - b)).sum(-1)
        np.testing.assert_allclose(result.kl[k, :ids.shape[1]], expected.numpy(), rtol=1e-4, atol=1e-6)
    assert subject.program.is_identity


def test_a_second_checkpoint_is_loaded_compared_and_released(tmp_path, monkeypatch):
    """Oracle: the saved copy is the same model (weights exactly equal; KL within 1e-6, as the reload
    runs SDPA attention where the tiny model runs eager); a copy with one matrix scaled by 1.5
    changes by exactly 0.5 there, at full rank; the loaded subject is released afterwards."""
    subject = llama()
    subject.model.save_pretrained(tmp_path / "same")
    subject.tokenizer.save_pretrained(tmp_path / "same")
    changed = copy.deepcopy(subject.model)
    with torch.no_grad():
        changed.model.layers[2].mlp.up_proj.weight.mul_(1.5)
    changed.save_pretrained(tmp_path / "changed")
    subject.tokenizer.save_pretrained(tmp_path / "changed")
    released = []
    original_release = nm.Subject.release
    monkeypatch.setattr(nm.Subject, "release", lambda self: (released.append(self.name), original_release(self)))
    same = nm.diff_models(subject, "current", str(tmp_path / "same"), corpus=TEXTS[:1], progress=False)
    assert np.abs(same.kl[np.isfinite(same.kl)]).max() < 1e-6 and np.all(same.weight_change == 0)
    other = nm.diff_models(subject, "current", str(tmp_path / "changed"), corpus=TEXTS[:1], progress=False)
    index = other.matrices.index("2.mlp.up_proj")
    assert abs(other.weight_change[index] - 0.5) < 1e-6 and other.weight_rank[index] == 32
    assert np.count_nonzero(other.weight_change) == 1 and other.mean_kl > 0
    assert released == [str(tmp_path / "same"), str(tmp_path / "changed")]


def test_a_checkpoint_with_a_padded_vocabulary_is_the_same_model(tmp_path):
    """Oracle (planted): the same weights with 32 extra embedding and head rows, as checkpoints of
    one tokenizer pad their vocabularies to different sizes, are the same model on the tokenizer's
    tokens: KL within 1e-6 (SDPA on reload) and no drift (fails with the padding rows left in the
    softmax, or with a shape error)."""
    subject = llama()
    padded = copy.deepcopy(subject.model)
    padded.resize_token_embeddings(subject.vocab_size + 32)
    padded.save_pretrained(tmp_path / "padded")
    subject.tokenizer.save_pretrained(tmp_path / "padded")
    result = nm.diff_models(subject, "current", str(tmp_path / "padded"), corpus=TEXTS[:1], probes=False,
                            progress=False)
    assert np.abs(result.kl[np.isfinite(result.kl)]).max() < 1e-6
    assert np.abs(result.drift_relative).max() < 1e-5 and np.array_equal(result.top_a, result.top_b)


def test_a_checkpoint_of_another_width_is_refused_in_one_line(tmp_path):
    subject = llama()
    config = copy.deepcopy(subject.model.config)
    config.hidden_size *= 2
    wider = type(subject.model)(config)
    wider.save_pretrained(tmp_path / "wider")
    subject.tokenizer.save_pretrained(tmp_path / "wider")
    before = state(subject, torch.tensor([[3, 4, 5]]))
    with pytest.raises(nm.NeuroMagicsError, match="has d_model 64 and tiny-llama 32: .* same width") as error:
        nm.diff_models(subject, "current", str(tmp_path / "wider"), corpus=TEXTS, progress=False)
    assert "\n" not in str(error.value)
    after = state(subject, torch.tensor([[3, 4, 5]]))
    assert before[:2] == after[:2] and torch.equal(before[2], after[2])


def test_the_state_comes_back_after_an_interrupt(monkeypatch, token_ids):
    subject = llama()
    subject.set_program([0, 1, 1, 2, 3])
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    nm.merge_adapters(subject)
    before = state(subject, token_ids)
    parameters = {n: p.detach().clone() for n, p in subject.model.named_parameters()}

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_diff, "kl_divergence", interrupt)
    with pytest.raises(KeyboardInterrupt):
        nm.diff_models(subject, "original", "-adapter", corpus=TEXTS, progress=False)
    after = state(subject, token_ids)
    assert after[0] == before[0] and after[1] == before[1] and torch.equal(after[2], before[2])
    for name, parameter in subject.model.named_parameters():
        assert torch.equal(parameter, parameters[name]), name


@pytest.mark.parametrize("a, b, options, message", [
    ("current", "-steer", {}, "no steer intervention is active"),
    ("", "current", {}, "Empty model spec"),
    ("current", "0-9", {}, "reaches block 9"),
    ("current", "/nonexistent/checkpoint", {}, "No folder '/nonexistent/checkpoint'"),
    ("current", "original", {"max_tokens": 1}, "--max-tokens"),
    ("current", "original", {"corpus": []}, "The corpus is empty"),
])
def test_bad_input_is_one_line_and_changes_nothing(a, b, options, message, token_ids):
    subject = llama()
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    before = state(subject, token_ids)
    with pytest.raises(nm.NeuroMagicsError, match=message) as error:
        nm.diff_models(subject, a, b, progress=False, **options)
    assert "\n" not in str(error.value).strip()
    after = state(subject, token_ids)
    assert after[0] == before[0] and after[1] == before[1] and torch.equal(after[2], before[2])


def test_another_tokenizer_is_refused_in_one_line(tmp_path):
    subject = llama()
    subject.model.save_pretrained(tmp_path / "other")
    from transformers import AutoTokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.add_tokens(["<extra>"])
    tokenizer.save_pretrained(tmp_path / "other")
    assert AutoTokenizer.from_pretrained(tmp_path / "other").get_vocab() != subject.tokenizer.get_vocab()
    with pytest.raises(nm.NeuroMagicsError, match="another tokenizer"):
        nm.diff_models(subject, "current", str(tmp_path / "other"), corpus=TEXTS, progress=False)


def test_result_saves_loads_frames_and_draws(tmp_path):
    subject = llama()
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    result = nm.diff_models(subject, "current", "-adapter", corpus=TEXTS, progress=False)
    loaded = nm.load_result(result.save(tmp_path / "d.npz"))
    np.testing.assert_array_equal(loaded.kl, result.kl)
    assert loaded.matrices == result.matrices and loaded.steps == result.steps
    assert repr(loaded) == repr(result) and "mean KL" in repr(result)
    frame = result.to_pandas()
    assert len(frame) == result.n_tokens and set(frame.columns) >= {"token", "kl", "top_a", "top_b"}
    assert len(result.layers_frame()) == 4 and len(result.matrices_frame()) == 28
    box = result.widget()
    assert len(box.children) == 4 and "Largest KL" in box.children[-1].value
    assert box.children[1].values.shape == (2, 4, 7)


def test_magic(tiny_in_shell, shell, token_ids):
    subject = tiny_in_shell
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    before = state(subject, token_ids)
    result = shell.run_line_magic("diff_models", "current -adapter --no-probes --max-tokens 16 -o d")
    assert shell.user_ns["d"] is result and result.kl.shape[1] == 16 and result.probes == []
    with pytest.raises(UsageError, match="--max-tokens must be at least 1"):
        shell.run_line_magic("diff_models", "current original --max-tokens 0")
    with pytest.raises(UsageError, match="no steer intervention"):
        shell.run_line_magic("diff_models", "current -steer")
    after = state(subject, token_ids)
    assert after[1] == before[1] and torch.equal(after[2], before[2])


def test_figures():
    subject = llama()
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    result = nm.diff_models(subject, "current", "-adapter", corpus=TEXTS[:1], progress=False, probes=False)
    assert result.figure().data[0].z.shape == (4, 7)
    assert len(result.figure("drift").data) == 2
    with pytest.raises(nm.NeuroMagicsError, match="Unknown measure"):
        result.figure("nope")
    tuned = nm.finetune(subject, TEXTS[0] * 4, steps=2, context=16, progress=False)
    assert len(tuned.figure().data[0].y) == 2


def test_the_pca_reads_at_most_its_token_budget(monkeypatch):
    """Oracle: numpy's SVD of the first 10 differences (the hooked update as the only change)."""
    subject = llama()
    ft.adapter_intervention(subject, random_adapter(subject)).install(subject)
    full = nm.diff_models(subject, "-adapter", "current", corpus=TEXTS[:1], progress=False, probes=False)
    monkeypatch.setattr(model_diff, "PCA_MAX_TOKENS", 10)
    capped = nm.diff_models(subject, "-adapter", "current", corpus=TEXTS, progress=False, probes=False)
    ids = subject.tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 11
    np.testing.assert_array_equal(capped.kl[0, :ids.shape[1]], full.kl[0, :ids.shape[1]])
    assert not np.allclose(capped.drift_pca, full.drift_pca) and np.all(capped.drift_pca.sum(1) <= 1 + 1e-6)
    outputs = {}
    for name, model_state in (("a", "-adapter"), ("b", "current")):
        states = []
        handles = [block.register_forward_hook(lambda m, a, o: states.append(o[0] if isinstance(o, tuple) else o))
                   for block in subject.blocks]
        removed = nm.adapters_off(subject) if model_state == "-adapter" else 0
        with torch.no_grad():
            subject.model(ids)
        if removed:
            nm.adapters_on(subject)
        for handle in handles:
            handle.remove()
        outputs[name] = torch.stack(states)[:, 0, 1:11].double()
    for step in range(4):
        rows = (outputs["b"][step] - outputs["a"][step]).numpy()
        values = np.linalg.svd(rows - rows.mean(0), compute_uv=False) ** 2
        np.testing.assert_allclose(capped.drift_pca[step], values[:5] / values.sum(), rtol=1e-3, atol=1e-6)


def test_each_sides_top_tokens_and_the_table_equal_its_own_hf_forward():
    """Oracle: each text alone through HF, (A) the model without the adapter and (B) a deepcopy with
    the update merged by hand: A's and B's argmax per position, the KL, the token ids and pieces.
    Batches of two texts of different lengths (left padding, a second batch); the table and the
    largest-KL list read the same numbers (fails with B's top tokens copied from A, a batch's rows
    stored under the wrong text, or the context around a top token shifted)."""
    subject = llama()
    adapter = finetune_tests.random_adapter(subject, rank=3, alpha=30.0)
    merged = copy.deepcopy(subject.model)
    with torch.no_grad():
        for name in adapter.targets:
            weight_matrix(merged.get_submodule(ft.module_path(subject, name))).add_(adapter.delta(name))
    ft.adapter_intervention(subject, adapter).install(subject)
    texts = [TEXTS[1], TEXTS[0], TEXTS[2]]
    result = nm.diff_models(subject, "-adapter", "current", corpus=texts, batch_size=2, progress=False, probes=False)
    nm.remove_adapters(subject)
    differ, pieces = 0, []
    for k, text in enumerate(texts):
        ids = subject.tokenizer(text, return_tensors="pt")["input_ids"]
        n = ids.shape[1]
        with torch.no_grad():
            logits_a, logits_b = subject.model(ids).logits[0], merged(ids).logits[0]
        np.testing.assert_array_equal(result.top_a[k, :n], logits_a.argmax(-1).numpy())
        np.testing.assert_array_equal(result.top_b[k, :n], logits_b.argmax(-1).numpy())
        assert (result.top_a[k, n:] == -1).all() and (result.token_ids[k, n:] == -1).all()
        np.testing.assert_array_equal(result.token_ids[k, :n], ids[0].numpy())
        pieces.append([subject.tokenizer.decode([int(i)]) for i in ids[0]])  # one character per token
        assert result.pieces[k] == pieces[k]
        differ += int((logits_a.argmax(-1) != logits_b.argmax(-1)).sum())
        a, b = logits_a.log_softmax(-1), logits_b.log_softmax(-1)
        np.testing.assert_allclose(result.kl[k, :n], (a.exp() * (a - b)).sum(-1).numpy(), rtol=1e-4, atol=1e-6)
    assert differ > 3  # the two sides' top tokens differ at several positions
    frame = result.to_pandas()
    row = frame[(frame["text"] == 2) & (frame["position"] == 5)].iloc[0]
    assert row["token"] == pieces[2][5] and row["kl"] == pytest.approx(float(result.kl[2, 5]))
    assert row["top_a"] == subject.tokenizer.decode([int(result.top_a[2, 5])])
    assert row["top_b"] == subject.tokenizer.decode([int(result.top_b[2, 5])])
    flat = [(float(result.kl[t, p]), t, p) for t in range(3) for p in range(len(pieces[t]))]
    for entry, (value, t, p) in zip(result.top_tokens(4, window=3), sorted(flat, key=lambda f: -f[0])[:4]):
        assert (entry["text"], entry["position"], entry["kl"]) == (t, p, pytest.approx(value))
        assert entry["token"] == pieces[t][p] and entry["left"] == "".join(pieces[t][max(0, p - 3):p])
        assert entry["next"] == "".join(pieces[t][p + 1:p + 2])
        assert entry["top_a"] == subject.tokenizer.decode([int(result.top_a[t, p])])
        assert entry["top_b"] == subject.tokenizer.decode([int(result.top_b[t, p])])


def test_probe_scores_are_each_sides_own():
    """Oracle: the forgetting probes' mean answer log-prob from HF's logits, item by item (unpadded),
    on the model without the adapter (A) and with it merged by hand (B); the summary rows print
    them (fails with the sides swapped, or B's scores taken from A)."""
    from neuro_magics.core.probe_sets import load_probe
    from neuro_magics.core.probe_sets import SCORED_PROBES

    subject = llama()
    adapter = finetune_tests.random_adapter(subject, rank=3, alpha=30.0)
    merged = copy.deepcopy(subject.model)
    with torch.no_grad():
        for name in adapter.targets:
            weight_matrix(merged.get_submodule(ft.module_path(subject, name))).add_(adapter.delta(name))
    ft.adapter_intervention(subject, adapter).install(subject)
    result = nm.diff_models(subject, "-adapter", "current", corpus=TEXTS[:1], progress=False)
    nm.remove_adapters(subject)

    def hand(model, probe):
        scores = []
        for item in load_probe(probe).items:
            prompt = subject.tokenizer(item.prompt)["input_ids"]
            spaced = item.prompt[-1].isspace() or item.answer[0].isspace()
            answer = subject.tokenizer(item.answer if spaced else " " + item.answer,
                                       add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + answer])
            with torch.no_grad():
                logprobs = model(ids).logits[0].double().log_softmax(-1)
            scores.append(float(torch.stack([logprobs[len(prompt) - 1 + k, t] for k, t in enumerate(answer)]).mean()))
        return float(np.mean(scores))

    assert result.probes == list(SCORED_PROBES)
    expected_a = [hand(subject.model, p) for p in SCORED_PROBES]
    expected_b = [hand(merged, p) for p in SCORED_PROBES]
    np.testing.assert_allclose(result.probe_a, expected_a, rtol=1e-4)
    np.testing.assert_allclose(result.probe_b, expected_b, rtol=1e-4)
    assert np.abs(np.subtract(expected_a, expected_b)).max() > 1e-3
    assert result.summary_rows()[0][1:] == (f"{expected_a[0]:.3f}", f"{expected_b[0]:.3f}")


@pytest.mark.parametrize("budget", [None, 1])
def test_side_major_runs_switch_once_per_chunk_and_equal_each_text_through_hf(monkeypatch, budget):
    """Oracle: each text alone through HF on (A) the unpruned model and (B) a deepcopy holding the
    pruned weights; KL by ``kl_div``, top tokens by argmax, drift from the test's own block hooks
    in float64. The pruning rewrites every matrix, so each switch of state is costly: the run
    starts with the side already entered and switches once per chunk (one chunk: to A and back; with
    a one-byte budget, one batch per chunk and the sides' order alternating: to A, back to B) (fails with the sides swapped on the alternate chunks,
    or a chunk's stored outputs paired with another batch, or a switch per batch)."""
    subject = llama()
    texts = [TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[0][:20]]
    nm.prune(subject, "magnitude", 0.3)
    pruned = copy.deepcopy(subject.model)
    nm.reset_interventions(subject, "prune")
    nm.prune(subject, "magnitude", 0.3)
    if budget is not None:
        monkeypatch.setattr(model_diff, "STORED_SIDE_BYTES", budget)
    switches = []
    original_set_state = nm.Subject.set_state
    monkeypatch.setattr(nm.Subject, "set_state",
                        lambda self, *args, **kw: (switches.append(1), original_set_state(self, *args, **kw))[1])
    result = nm.diff_models(subject, "original", "current", corpus=texts, batch_size=2, progress=False, probes=False)
    n_chunks = 1 if budget is None else 2
    # B (current) runs first, then A (a switch), back to B at the end (one chunk: the restore;
    # two chunks: A runs first in the second chunk, then B, and no restore is needed).
    assert len(switches) == n_chunks + n_chunks % 2 == 2

    def forward(model, ids):
        states = []
        handles = [block.register_forward_hook(lambda m, a, o: states.append(o[0] if isinstance(o, tuple) else o))
                   for block in model.model.layers]
        try:
            with torch.no_grad():
                logits = model(ids).logits[0]
        finally:
            for handle in handles:
                handle.remove()
        return logits, torch.stack(states)[:, 0, 1:].double()

    plain = copy.deepcopy(subject.model)
    nm.reset_interventions(subject, "prune")
    plain.load_state_dict(subject.model.state_dict())
    l2, relative = [], []
    for k, text in enumerate(texts):
        ids = subject.tokenizer(text, return_tensors="pt")["input_ids"]
        n = ids.shape[1]
        logits_a, states_a = forward(plain, ids)
        logits_b, states_b = forward(pruned, ids)
        expected = torch.nn.functional.kl_div(logits_b.log_softmax(-1), logits_a.log_softmax(-1), log_target=True,
                                              reduction="none").sum(-1)
        np.testing.assert_allclose(result.kl[k, :n], expected.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(result.top_a[k, :n], logits_a.argmax(-1).numpy())
        np.testing.assert_array_equal(result.top_b[k, :n], logits_b.argmax(-1).numpy())
        l2.append((states_b - states_a).norm(dim=-1))
        relative.append((states_b - states_a).norm(dim=-1) / states_a.norm(dim=-1))
    assert result.mean_kl > 1e-5 and result.drift_relative[-1] > 0.05
    np.testing.assert_allclose(result.drift_l2, torch.cat(l2, 1).mean(1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(result.drift_relative, torch.cat(relative, 1).mean(1).numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape", [(40, 24), (24, 40)])
def test_numerical_rank_counts_numpys_singular_values_above_the_tolerance(shape):
    """Oracle: planted singular values (numpy's own SVD of the planted matrix counts them) around
    the tolerance, of a tall and a wide matrix: far above, 1% above, 1% below, far below, zero
    (fails with the tolerance compared unsquared with the Gram eigenvalues, or the wrong side of
    a near value)."""
    generator = np.random.default_rng(4)
    tolerance = 1e-3
    values = np.array([5.0, 0.3, 0.02, tolerance * 1.01, tolerance * 0.99, 1e-6, 0.0] + [0.0] * 10)
    u, _ = np.linalg.qr(generator.normal(size=(shape[0], len(values))))
    v, _ = np.linalg.qr(generator.normal(size=(shape[1], len(values))))
    change = u @ np.diag(values) @ v.T
    expected = int((np.linalg.svd(change, compute_uv=False) > tolerance).sum())
    assert expected == 4
    assert model_diff.numerical_rank(torch.from_numpy(change), tolerance) == expected
    assert model_diff.numerical_rank(torch.from_numpy(change) * 0, tolerance) == 0
    scaled = change * 1e2  # all but the planted zeros and 1e-6 * 1e2 far above the tolerance
    assert model_diff.numerical_rank(torch.from_numpy(scaled), tolerance) == int(
        (np.linalg.svd(scaled, compute_uv=False) > tolerance).sum()) == 5
