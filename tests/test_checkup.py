"""%checkup: planted anomalies are found where they were planted, a clean model reports none.

Oracles: planted ground truth (a massive embedding dim at the first token, a head that only
attends to token 0, a dead MLP neuron, a head whose output projection is zero); sink mass and
entropy by hand from HF ``output_attentions`` of each text alone; head importance against
central finite differences of each text's loss with the head's output scaled by a hook written
here; the power-law fit on samples drawn from a known power law.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_magics import NeuroMagicsError, Subject, load_result
from neuro_magics.analyses.checkup import checkup, power_law_alpha
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [
    "The cat sat on the mat and looked at the dog across the room.",
    "The weather was cold, so we stayed inside and read old books.",
    "The numbers add up: two plus three is five, and five plus five is ten.",
    "The train left early; nobody on the platform seemed to mind much.",
    "The river runs north past the mill, then bends east toward the sea.",
    "The code compiles, but the tests fail on the second run of the loop.",
    "The sun rose.",  # shorter than the rest: batches are left-padded
]
MASSIVE_DIM, CONSTANT_DIM, FIRST_DIM = 5, 7, 9
SINK_LAYER, SINK_HEAD = 2, 1
DEAD_LAYER, DEAD_NEURON = 1, 17
DEAD_HEAD_LAYER, DEAD_HEAD = 3, 2


def _subject(model) -> Subject:
    return Subject(model, tiny_tokenizer(), name="tiny-llama")


def _first_token_id() -> int:
    return tiny_tokenizer().convert_tokens_to_ids("T")


def _serious(result) -> list:
    return [f for f in result.findings if f.severity in ("high", "medium")]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_clean_model_has_no_serious_findings(family):
    result = checkup(_subject(tiny_model(family)), TEXTS)
    assert _serious(result) == [], result
    assert {f.kind for f in result.findings} >= {"residual_growth", "block_influence", "logit_lens"}


def test_planted_massive_activation_is_found_at_its_dim_and_token():
    """Ground truth: the embedding of "T" (every text's first token) gets 400 in one dim."""
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.embed_tokens.weight[_first_token_id(), MASSIVE_DIM] = 400.0
    result = checkup(_subject(model), TEXTS)
    massive = [f for f in result.findings if f.kind == "massive_activation"]
    assert [(f.dim, f.token) for f in massive] == [(MASSIVE_DIM, 0)], result
    assert massive[0].value > 100 and "'T'" in massive[0].explanation
    assert result.resid_max[:, MASSIVE_DIM].min() > 100
    assert {f.kind for f in _serious(result)} == {"massive_activation"}


def _block_input(model, ids, block: int) -> torch.Tensor:
    """What block ``block`` receives, read by a pre-hook written here (HF's own hidden-state
    capture may run before the fix's hook and see the block's output unfixed)."""
    seen = []

    def grab(module, args, kwargs):
        seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())

    handle = model.model.layers[block].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(ids)
    finally:
        handle.remove()
    return seen[0][0]


def test_massive_fix_sets_the_cells_to_their_mean_or_zero():
    """Oracle: the next block's input, read by a hook written here, after the fix is installed."""
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.embed_tokens.weight[_first_token_id(), MASSIVE_DIM] = 400.0
    subject = _subject(model)
    result = checkup(subject, TEXTS, spectra=False)
    index = next(k for k, f in enumerate(result.findings) if f.kind == "massive_activation")
    ids = tiny_tokenizer()(TEXTS[0], return_tensors="pt")["input_ids"]
    before = _block_input(model, ids, 1)
    diff = result.apply(index, mode="zero", prompts=["The end"], max_new_tokens=2)
    assert diff.after.label.startswith("set massive activations of dim 5 to zero")
    assert before[0, MASSIVE_DIM].abs() > 100
    after = _block_input(model, ids, 1)
    assert after[0, MASSIVE_DIM] == 0
    assert torch.equal(after[1:], before[1:]) and torch.equal(after[0, :MASSIVE_DIM], before[0, :MASSIVE_DIM])
    assert max(_block_input(model, ids, b)[0, MASSIVE_DIM].abs() for b in (2, 3)) < 1  # nothing re-grows
    assert len(subject.interventions) == 1
    subject.remove_interventions()
    mean = result.findings[index].action["blocks"][0]["means"][0]
    with result.action_intervention(index, subject).applied(subject):
        assert _block_input(model, ids, 1)[0, MASSIVE_DIM].item() == pytest.approx(mean, rel=1e-6)


def _plant_sink(model) -> None:
    """Head SINK_HEAD of layer SINK_LAYER attends only to the first token: a constant embedding
    dim drives its query, a dim only "T" has drives the key of its KV group, both through the
    head's lowest-frequency rotary pair (dim 3 of 8), which barely turns over 64 positions."""
    attention = model.model.layers[SINK_LAYER].self_attn
    head_dim = 8
    with torch.no_grad():
        model.model.embed_tokens.weight[:, CONSTANT_DIM] = 1.0
        model.model.embed_tokens.weight[:, FIRST_DIM] = 0.0
        model.model.embed_tokens.weight[_first_token_id(), FIRST_DIM] = 1.0
        for head in (0, 1):  # heads 0 and 1 share KV head 0; only head 1 gets the query
            attention.q_proj.weight[head * head_dim + 3] = 0.0
        attention.q_proj.weight[SINK_HEAD * head_dim + 3, CONSTANT_DIM] = 20.0
        attention.k_proj.weight[3] = 0.0
        attention.k_proj.weight[3, FIRST_DIM] = 20.0


def test_planted_sink_head_is_found_and_sink_mass_and_entropy_match_hf_attentions():
    model = tiny_model("llama")
    _plant_sink(model)
    result = checkup(_subject(model), TEXTS)
    sinks = [(f.step, f.head) for f in result.findings if f.kind == "attention_sink"]
    assert sinks == [(SINK_LAYER, SINK_HEAD)], result
    assert list(zip(*np.nonzero(result.sink_mass > 0.5))) == [(SINK_LAYER, SINK_HEAD)]
    assert result.sink_mass[SINK_LAYER, SINK_HEAD] > 0.95
    # hand computation from HF's attentions, each text alone (queries 1.. attend to key 0)
    tokenizer = tiny_tokenizer()
    mass, entropy, count = 0.0, 0.0, 0
    for text in TEXTS:
        ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :48]  # the checkup's default max_tokens
        with torch.no_grad():
            attentions = torch.stack(model(ids, output_attentions=True).attentions)[:, 0]  # [L, H, T, T]
        mass = mass + attentions[:, :, 1:, 0].sum(-1)
        entropy = entropy - (attentions * attentions.clamp_min(1e-30).log()).sum(-1)[:, :, 1:].sum(-1)
        count += ids.shape[1] - 1
    np.testing.assert_allclose(result.sink_mass, (mass / count).numpy(), atol=1e-5)
    np.testing.assert_allclose(result.entropy, (entropy / count).numpy(), atol=1e-4)


def test_planted_dead_neuron_is_found():
    """Ground truth: a zero gate row makes silu(0) * up = 0 on every token."""
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.layers[DEAD_LAYER].mlp.gate_proj.weight[DEAD_NEURON] = 0.0
    result = checkup(_subject(model), TEXTS)
    dead = [f for f in result.findings if f.kind == "dead_neurons"]
    assert [(f.step, f.dim) for f in dead] == [(DEAD_LAYER, DEAD_NEURON)], result
    assert dead[0].action == {"kind": "ablate_neurons", "neurons": [[DEAD_LAYER, DEAD_NEURON]]}
    assert {f.kind for f in _serious(result)} == {"dead_neurons"}


def test_planted_saturated_neuron_is_found_and_neuron_moments_match_an_hf_hook():
    """Ground truth: GPT-2 neuron 11 of layer 2 gets a zero input row and a bias of 4, so it is
    gelu(4) on every token: saturated, and the only serious finding. The per-neuron mean and
    spread equal those of the MLP activations read by a hook written here on HF's ``act``
    module, one text at a time."""
    model = tiny_model("gpt2")
    with torch.no_grad():
        model.transformer.h[2].mlp.c_fc.weight[:, 11] = 0.0  # Conv1D: [in, out]
        model.transformer.h[2].mlp.c_fc.bias[11] = 4.0
    subject = Subject(model, tiny_tokenizer(), name="tiny-gpt2")
    result = checkup(subject, TEXTS, spectra=False)
    stuck = [f for f in result.findings if f.kind == "saturated_neurons"]
    assert [(f.step, f.dim) for f in stuck] == [(2, 11)], result
    assert stuck[0].value == pytest.approx(float(torch.nn.functional.gelu(torch.tensor(4.0), approximate="tanh")), rel=1e-4)
    assert {f.kind for f in _serious(result)} == {"saturated_neurons"}
    seen = []
    handles = [block.mlp.act.register_forward_hook(lambda m, a, o: seen.append(o[0].double()))
               for block in model.transformer.h]
    try:
        with torch.no_grad():
            for text in TEXTS:
                ids = tiny_tokenizer()(text, return_tensors="pt")["input_ids"]
                model(ids[:, :result.metadata["max_tokens"]])  # the checkup cuts texts to the context
    finally:
        for handle in handles:
            handle.remove()
    layers = len(model.transformer.h)
    per_layer = [torch.cat(seen[layer::layers]) for layer in range(layers)]  # [tokens, N] each
    np.testing.assert_allclose(result.neuron_mean, np.stack([a.mean(0).numpy() for a in per_layer]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.neuron_std, np.stack([a.std(0, unbiased=False).numpy() for a in per_layer]),
                               rtol=1e-3, atol=1e-5)


def test_planted_dead_head_is_found_and_its_ablation_changes_nothing():
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.layers[DEAD_HEAD_LAYER].self_attn.o_proj.weight[:, DEAD_HEAD * 8:(DEAD_HEAD + 1) * 8] = 0.0
    subject = _subject(model)
    result = checkup(subject, TEXTS, spectra=False)
    dead = [(k, f) for k, f in enumerate(result.findings) if f.kind == "dead_head"]
    assert [(f.step, f.head) for _, f in dead] == [(DEAD_HEAD_LAYER, DEAD_HEAD)], result
    diff = result.apply(dead[0][0], prompts=["The end"], max_new_tokens=2)
    assert diff.n_changed == 0 and diff.after.perplexity == diff.before.perplexity
    assert [i.kind for i in subject.interventions] == ["ablate"]


def test_head_importance_equals_finite_differences_of_each_texts_loss():
    """Oracle: (L_x(1 + e) - L_x(1 - e)) / 2e with head h's slice of the o_proj input scaled
    by a hook written here, |.| averaged over texts, each text alone and unpadded."""
    model = tiny_model("llama").double()  # fp64 (HF's eager mask gives NaN on padded fp64 rows: equal lengths here)
    subject = _subject(model)
    texts = TEXTS[:-1]
    result = checkup(subject, texts, spectra=False)
    tokenizer, eps = tiny_tokenizer(), 1e-3  # HF eager attention takes its softmax in fp32: noise ~1e-7

    def loss(ids, layer, head, scale):
        def hook(module, args):
            split = args[0].clone().view(*args[0].shape[:-1], 4, 8)
            split[..., head, :] *= scale
            return (split.view_as(args[0]),)

        handle = model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(hook)
        try:
            with torch.no_grad():
                logits = model(ids).logits[0, :-1]
        finally:
            handle.remove()
        return torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item()

    for layer, head in [(0, 0), (1, 3), (3, 2)]:
        slopes = []
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :48]
            slopes.append(abs(loss(ids, layer, head, 1 + eps) - loss(ids, layer, head, 1 - eps)) / (2 * eps))
        assert result.importance[layer, head] == pytest.approx(np.mean(slopes), rel=2e-3)


def test_padded_batches_equal_one_text_at_a_time():
    """Left padding changes nothing: batched statistics equal batch_size=1 ones."""
    subject = _subject(tiny_model("llama"))
    batched, serial = (checkup(subject, TEXTS, batch_size=size, spectra=False) for size in (4, 1))
    for name in ("importance", "sink_mass", "entropy", "resid_norm", "neuron_max", "neuron_mean", "neuron_std",
                 "block_influence", "resid_max"):
        np.testing.assert_allclose(getattr(batched, name), getattr(serial, name), rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("alpha", [2.5, 4.0])
def test_power_law_fit_recovers_a_planted_exponent(alpha):
    """Samples x = xmin (1 - u)^(-1 / (alpha - 1)) follow p(x) ~ x^-alpha above xmin = 1; a
    uniform body below xmin must be cut off by the KS choice of xmin."""
    rng = np.random.default_rng(0)
    tail = (1 - rng.random(3000)) ** (-1 / (alpha - 1))
    body = rng.uniform(0.01, 1.0, 3000)
    fitted, xmin, _ = power_law_alpha(np.concatenate([body, tail]))
    assert fitted == pytest.approx(alpha, abs=0.1)
    assert 0.9 < xmin < 1.3


def test_result_round_trips_and_tabulates(tmp_path):
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.layers[DEAD_LAYER].mlp.gate_proj.weight[DEAD_NEURON] = 0.0
    result = checkup(_subject(model), TEXTS)
    table = result.to_pandas()
    assert len(table) == len(result.findings) and table.iloc[0]["kind"] == "dead_neurons"
    loaded = load_result(result.save(tmp_path / "c.npz"))
    assert loaded.findings == result.findings and np.array_equal(loaded.sink_mass, result.sink_mass)
    assert np.array_equal(loaded.alpha, result.alpha, equal_nan=True)
    with pytest.raises(NeuroMagicsError, match="not loaded"):
        loaded.apply(0)


def test_bad_input_is_one_line_and_leaves_the_model_alone():
    subject = _subject(tiny_model("llama"))
    with pytest.raises(NeuroMagicsError, match="--max-texts must be a whole number of at least 1"):
        checkup(subject, TEXTS, max_texts=0)
    with pytest.raises(NeuroMagicsError, match="No corpus file"):
        checkup(subject, "/nonexistent/corpus.txt")
    result = checkup(subject, TEXTS, spectra=False)
    info = next(k for k, f in enumerate(result.findings) if f.action is None)
    with pytest.raises(NeuroMagicsError, match="no action"):
        result.apply(info)
    assert subject.interventions == ()


@pytest.mark.integration
def test_default_model_reports_its_first_token_sink_and_massive_dims(default_subject):
    """SmolLM2-135M: the first token's residual norm jumps to about 22,000 at layer 11 (DESIGN.md),
    carried by dim 507; most heads from layer 2 on park their attention on that token."""
    result = checkup(default_subject, max_texts=8, max_tokens=32, spectra=False)
    sinks = [f for f in result.findings if f.kind == "attention_sink"]
    massive = [f for f in result.findings if f.kind == "massive_activation"]
    assert len(sinks) == 1 and sinks[0].token == 0 and sinks[0].value > 0.9
    assert (result.sink_mass > 0.5).sum() > 100
    assert massive[0].dim == 507 and massive[0].token == 0 and massive[0].step >= 11 and massive[0].value > 10_000


def test_magic_stores_the_result_writes_html_and_refuses_bad_paths_first(shell, tmp_path):
    from IPython.core.error import UsageError

    subject = _subject(tiny_model("llama"))
    shell.neuro_magics_session.subject = subject
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(TEXTS))
    result = shell.run_line_magic("checkup", f"--corpus {corpus} --max-texts 3 --no-spectra --html {tmp_path / 'r'} -o c")
    assert shell.user_ns["c"] is result and result.metadata["n_texts"] == 3 and result.alpha.size == 0
    assert result.metadata["corpus"] == "texts.txt"
    assert (tmp_path / "r.html").read_text().count("nm-esm") >= 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calls = []
    for line, message in [(f"--html {blocker}/report.html", "HTML report"),
                          (f"--html {tmp_path / 'r.html'}", "exists"),
                          ("--max-texts 0", "--max-texts must be a whole number of at least 1"),
                          ("--max-tokens 1", "--max-tokens must be a whole number of at least 2"),
                          ("-o 1x", "variable name"),
                          ("--corpus /nonexistent.txt", "No corpus file"),
                          ("--overwrite", "--overwrite goes with --html")]:
        with pytest.raises(UsageError, match=message):
            shell.run_line_magic("checkup", line)
        calls.append(line)
    assert subject.interventions == () and len(calls) == 7


def test_widget_action_reports_queued_while_the_model_is_busy_then_applies():
    """A click while another thread holds the model waits ("queued") and applies after it."""
    import threading
    import time

    from neuro_magics.widgets.checkup import CheckupView

    model = tiny_model("llama")
    with torch.no_grad():
        model.model.layers[DEAD_LAYER].mlp.gate_proj.weight[DEAD_NEURON] = 0.0
    subject = _subject(model)
    result = checkup(subject, TEXTS, spectra=False)
    view = result.widget()
    assert isinstance(view, CheckupView) and view.findings.actions_enabled
    index = next(k for k, f in enumerate(result.findings) if f.kind == "dead_neurons")
    statuses = []
    view.findings.observe(lambda change: statuses.append(change["new"]), "status")
    release = threading.Event()

    def busy():
        with subject.lock:
            release.wait(10)

    holder = threading.Thread(target=busy)
    holder.start()
    time.sleep(0.05)
    clicker = threading.Thread(target=view.findings._message, args=(view.findings, {"type": "apply", "index": index}, []))
    clicker.start()
    time.sleep(0.2)
    assert statuses and "queued" in statuses[-1] and subject.interventions == ()
    release.set()
    holder.join()
    clicker.join(30)
    assert statuses[-1].startswith(f"Applied finding {index}") and [i.kind for i in subject.interventions] == ["ablate"]
    assert view.diff is not None and view.diff.kind == "diff"
    assert result.figure().data  # the paper figure draws too
