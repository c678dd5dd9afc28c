"""Corpus captures sharded over Ray workers (``workers=N``): the activations behind projections,
probes and SAE training, and the MLP-output matrix behind functional networks, on a local
two-CPU cluster shared by the whole module.

Oracles: HF's own forward of each text alone (``output_hidden_states``, and forward hooks
written here on the unmodified MLP modules), as the single-process tests use
(``test_geometry.py``, ``test_networks.py``); and the single-process call on the same subject,
which must be bit-identical in fp32 (workers run each batch with the same code, batching and
thread count).

Without Ray these tests skip, except under ``make test`` (NEURO_MAGICS_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
import neuro_magics.analyses.networks as networks_module
from neuro_magics.core.activations import collect
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.analyses.networks import decompose
from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from ray_cluster import cluster, one_thread, ray  # noqa: F401 (shared fixtures)
from test_brainscan import assert_untouched, model_state
from test_brainscan_ray import kill_every_worker
from test_networks import hf_mlp_outputs
from test_patch_ray import on_first_row
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["a cat sat", "hello there, world", "xy", "the quick brown fox", "jumps over", "one two three four",
         "lazy dogs", "mat"]


def llama() -> nm.Subject:
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    subject.model.generation_config.eos_token_id = None
    return subject


def no_workers_left() -> bool:
    return not [name for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]


def test_sharded_activations_are_hf_hidden_states_and_the_single_process_bit_for_bit(cluster):
    """Batches of 3 texts on 2 workers: every text's vectors sit where HF's forward of that text
    alone puts them (fails when a batch lands at another batch's offset), and equal the
    single-process capture bit for bit, tokens and means alike."""
    subject = llama()
    before = model_state(subject)
    sharded = collect(subject, TEXTS, [0, 2], site="resid_post", unit="token", batch_size=3, workers=2)
    here = collect(subject, TEXTS, [0, 2], site="resid_post", unit="token", batch_size=3)
    np.testing.assert_array_equal(sharded.vectors, here.vectors)
    assert sharded.text_tokens == here.text_tokens == [list(text) for text in TEXTS]
    for t, text in enumerate(TEXTS):
        ids = subject.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = subject.model(ids, output_hidden_states=True).hidden_states
        for k, step in enumerate([0, 2]):
            np.testing.assert_allclose(sharded.vectors[k, sharded.text_index == t], hidden[step + 1][0, 1:].numpy(),
                                       atol=1e-5)
    means = collect(subject, TEXTS, [1], site="mlp_out", unit="mean", batch_size=3, workers=2)
    np.testing.assert_array_equal(means.vectors, collect(subject, TEXTS, [1], site="mlp_out", unit="mean",
                                                         batch_size=3).vectors)
    assert_untouched(subject, before)
    assert no_workers_left()


def test_projection_probe_and_sae_on_workers_equal_one_process_with_a_steering_vector(cluster):
    """A steering vector (a hook the workers rebuild from its spec) changes the activations;
    the sharded projection, probe and SAE are still the single process's, bit for bit."""
    subject = llama()
    plain = collect(subject, TEXTS, [3], site="resid_post")
    nm.steer(subject, layer=1, coef=4.0, vector=np.linspace(-1, 1, subject.d_model, dtype=np.float32))
    assert not np.array_equal(collect(subject, TEXTS, [3], site="resid_post").vectors, plain.vectors)
    options = dict(layers="1,3", clusters=2, progress=False)
    projections = [nm.project(subject, TEXTS, **options, workers=workers) for workers in (2, None)]
    np.testing.assert_array_equal(projections[0].coords, projections[1].coords)
    np.testing.assert_array_equal(projections[0].clusters, projections[1].clusters)
    data = [(text, "long" if len(text) > 8 else "short") for text in TEXTS * 2]
    probes = [nm.probe(subject, data, layers="2,3", cv=2, progress=False, workers=workers) for workers in (2, None)]
    for name in ("fold_accuracy", "fold_control", "weights", "class_means"):
        np.testing.assert_array_equal(getattr(probes[0], name), getattr(probes[1], name), err_msg=name)
    saes = [nm.train_sae(subject, layer=2, expansion=2, k=4, texts=TEXTS * 2, steps=5, batch_size=32,
                         progress=False, workers=workers) for workers in (2, None)]
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        np.testing.assert_array_equal(getattr(saes[0], name), getattr(saes[1], name), err_msg=name)


def long_texts(monkeypatch) -> list[str]:
    """Texts of 12 to 114 tokens (within the tiny model's 128), captured in batches of at most
    200 tokens: several batches, each of texts from all over the corpus (batched by length)."""
    monkeypatch.setattr(networks_module, "BATCH_TOKENS", 200)
    return [(text + " ") * 6 for text in TEXTS]


def capture_signals(monkeypatch) -> dict:
    """Keep the matrix the networks are fitted on (before standardising)."""
    seen = {}

    def keep(signals, components, **kwargs):
        seen.setdefault("signals", []).append(signals.copy())
        return decompose(signals, components, **kwargs)

    monkeypatch.setattr(networks_module, "decompose", keep)
    return seen


def test_networks_on_workers_read_hf_mlp_outputs_and_equal_one_process(cluster, monkeypatch):
    """Texts are batched by length (so batches hold texts from all over the corpus) and each
    batch goes to whichever worker is free; every text's rows must still be its own HF MLP
    outputs, and the networks the single process's bit for bit."""
    subject = llama()
    nm.ablate(subject, heads="1.0")
    seen = capture_signals(monkeypatch)
    texts = long_texts(monkeypatch)
    options = dict(components=3, threshold=2.0, layers="1:3", standardize=False, progress=False)
    sharded = nm.networks(subject, texts, workers=2, **options)
    here = nm.networks(subject, texts, **options)
    np.testing.assert_array_equal(seen["signals"][0], seen["signals"][1])
    np.testing.assert_allclose(seen["signals"][0], hf_mlp_outputs(subject, texts, (1, 2)), atol=1e-5)
    for name in ("maps", "sources", "energy", "text_index", "positions"):
        np.testing.assert_array_equal(getattr(sharded, name), getattr(here, name), err_msg=name)
    assert no_workers_left()


def test_killed_workers_are_replaced_and_the_networks_are_the_same(cluster, monkeypatch):
    subject = llama()
    texts = long_texts(monkeypatch)
    options = dict(components=3, threshold=2.0, layers="1:3", progress=False)
    here = nm.networks(subject, texts, **options)
    on_first_row(monkeypatch, lambda: kill_every_worker(cluster))
    with pytest.warns(NeuroMagicsWarning, match="A Ray worker died"):
        sharded = nm.networks(subject, texts, workers=2, **options)
    np.testing.assert_array_equal(sharded.maps, here.maps)


def test_an_interrupt_fits_on_the_texts_the_workers_finished(cluster, monkeypatch):
    """Ctrl-C after the first batch arrives: the networks are fitted on exactly that batch's
    texts (their rows equal HF's), the model is untouched and no worker is left."""
    subject = llama()
    before = model_state(subject)
    texts = long_texts(monkeypatch)
    seen = capture_signals(monkeypatch)

    def interrupt():
        raise KeyboardInterrupt

    on_first_row(monkeypatch, interrupt)
    with pytest.warns(NeuroMagicsWarning, match="Interrupted"):
        partial = nm.networks(subject, texts, components=2, threshold=2.0, layers="1:3", standardize=False,
                              progress=False, workers=1)
    assert partial.metadata["interrupted"]
    kept = sorted(set(partial.text_index.tolist()))
    assert 0 < len(kept) < len(texts)
    np.testing.assert_allclose(seen["signals"][0], hf_mlp_outputs(subject, [texts[t] for t in kept], (1, 2)),
                               atol=1e-5)
    assert_untouched(subject, before)
    assert no_workers_left()


@pytest.mark.parametrize("call, message", [
    (lambda s: nm.networks(s, TEXTS, components=2, workers=0), "--workers must be at least 1"),
    (lambda s: nm.project(s, TEXTS, ray_address="127.0.0.1:6379"), "--ray-address needs --workers N"),
    (lambda s: nm.probe(s, [(t, "a" if k % 2 else "b") for k, t in enumerate(TEXTS)], cv=2, workers=-1),
     "--workers must be at least 1"),
    (lambda s: nm.train_sae(s, layer=1, texts=TEXTS, workers=0), "--workers must be at least 1"),
])
def test_bad_worker_options_are_one_line(call, message):
    subject = llama()
    before = model_state(subject)
    with pytest.raises(NeuroMagicsError, match=message):
        call(subject)
    assert_untouched(subject, before)


@pytest.mark.parametrize("magic, line, cell, message", [
    ("networks", "--workers 0", "\n".join(TEXTS), "--workers must be at least 1"),
    ("project", "--ray-address 127.0.0.1:6379", "\n".join(TEXTS), "--ray-address needs --workers N"),
    ("probe", "--task sentiment --workers x", None, "invalid int value"),
    ("sae", "train --step 1 --workers 0", "\n".join(TEXTS), "--workers must be at least 1"),
    ("sae", "show --workers 2", None, "--workers is for %sae train"),
])
def test_bad_magic_worker_options_are_one_line(shell, magic, line, cell, message):
    subject = llama()
    shell.neuro_magics_session.subject = subject
    before = model_state(subject)
    with pytest.raises(UsageError, match=message) as error:
        if cell is None:
            shell.run_line_magic(magic, line)
        else:
            shell.run_cell_magic(magic, line, cell)
    assert "\n" not in str(error.value)
    assert_untouched(subject, before)
