"""Activation patching's exact sweep sharded over Ray workers (``workers=N``), on a local
two-CPU cluster shared by the whole module.

Oracle: the single-process sweep on the same subject, itself checked against HF forwards with a
hand-placed state and a hand-written attention (``test_patching.py``, oracle 8); here also the
published identity that patching the only differing position at step 0 restores the clean
answer exactly (effect 1.0). Workers compute each program step with the same code and batching
as the single process, with the same thread count, so the maps must be bit-identical in fp32.

Without Ray these tests skip, except under ``make test`` (NEURO_MAGICS_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import numpy as np
import pytest
from IPython.core.error import UsageError

import neuro_magics as nm
import neuro_magics.core.distributed as distributed
from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from ray_cluster import cluster, one_thread, ray  # noqa: F401 (shared fixtures)
from test_brainscan import assert_untouched, model_state
from test_brainscan_ray import kill_every_worker
from tiny_models import tiny_model, tiny_tokenizer


CLEAN, CORRUPT = "ab cdefgh", "ab cdXfgh"  # char tokenizer: one token per character
DIFFERING = 5
ANSWERS = ("e", "X")
MAPS = ("patched_metric", "effect", "topk_ids", "topk_probs")


def llama() -> nm.Subject:
    return nm.Subject(tiny_model("llama"), tiny_tokenizer())


def patch(subject: nm.Subject, site: str = "resid_pre", **options) -> nm.PatchResult:
    """Batches of 3 columns: every step is several batched runs (9 positions, 4 heads)."""
    return nm.patch(subject, CLEAN, CORRUPT, ANSWERS, site=site, batch_size=3, progress=False, **options)


def assert_same_maps(got, expected) -> None:
    assert not got.metadata["interrupted"]
    for name in MAPS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_two_workers_give_the_single_process_sweep_bit_for_bit(cluster):
    subject = llama()
    before = model_state(subject)
    here = patch(subject)
    sharded = patch(subject, workers=2, method="both")
    assert_same_maps(sharded, here)
    assert np.isfinite(sharded.effect).all() and sharded.attribution is not None
    assert sharded.effect[0, DIFFERING] == pytest.approx(1.0, abs=1e-5)
    assert_untouched(subject, before)
    assert not [name for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]


def test_head_patching_on_two_workers_carries_the_installed_ablation(cluster):
    """The heads site, sharded, equals the single process on an ablated subject (the workers
    rebuild the ablation from its spec; without it the numbers differ)."""
    subject = llama()
    plain = patch(subject, "heads")
    nm.ablate(subject, heads="1.2,3.0")
    here = patch(subject, "heads")
    assert not np.array_equal(here.patched_metric, plain.patched_metric)  # the ablation matters
    sharded = patch(subject, "heads", workers=2)
    assert_same_maps(sharded, here)
    assert sharded.effect.shape == (subject.n_layers, subject.n_heads) and np.isfinite(sharded.effect).all()


def test_workers_run_the_current_layer_program(cluster):
    """Oracle: the single-process sweep under the same duplicated program (block 1 twice), and the
    identity program's sweep, which differs at every step: workers that ran their model's own
    program instead would give those numbers (or fail at step 4)."""
    subject = llama()
    identity = patch(subject)
    subject.set_program([0, 1, 1, 2, 3])
    here = patch(subject)
    assert here.effect.shape[0] == 5
    for step in range(4):
        assert not np.allclose(here.patched_metric[step], identity.patched_metric[step], atol=1e-6), step
    sharded = patch(subject, workers=2)
    assert_same_maps(sharded, here)
    assert list(subject.program.steps) == [0, 1, 1, 2, 3]


def on_first_row(monkeypatch, action) -> None:
    """Call ``action()`` when the first step comes back from the workers."""
    run_sharded = distributed.run_sharded

    def wrapped(*args, on_result, **kwargs):
        seen = []

        def first_then_record(unit, value):
            seen.append(unit)
            on_result(unit, value)
            if len(seen) == 1:
                action()

        return run_sharded(*args, on_result=first_then_record, **kwargs)

    monkeypatch.setattr(distributed, "run_sharded", wrapped)


def test_killed_workers_are_replaced_and_the_numbers_are_the_same(cluster, monkeypatch):
    """Both workers die after the first step arrives; the step next handed to a dead worker
    comes back as a death, is re-queued, and fresh workers finish the sweep."""
    subject = llama()
    here = patch(subject)
    on_first_row(monkeypatch, lambda: kill_every_worker(cluster))
    with pytest.warns(NeuroMagicsWarning, match="A Ray worker died"):
        sharded = patch(subject, workers=2)
    assert_same_maps(sharded, here)


def test_an_interrupt_keeps_the_finished_steps(cluster, monkeypatch):
    subject = llama()
    before = model_state(subject)
    here = patch(subject)

    def interrupt():
        raise KeyboardInterrupt

    on_first_row(monkeypatch, interrupt)
    partial = patch(subject, workers=1)
    assert partial.metadata["interrupted"]
    finished = np.isfinite(partial.effect).all(axis=1)
    assert finished.sum() == 1 and np.isnan(partial.effect[~finished]).all()
    np.testing.assert_array_equal(partial.patched_metric[finished], here.patched_metric[finished])
    assert_untouched(subject, before)
    assert not [name for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "--workers must be at least 1"),
    ({"ray_address": "127.0.0.1:6379"}, "--ray-address needs --workers N"),
    ({"workers": 2, "method": "attribution"}, "--method attribution is one gradient run here"),
])
def test_bad_worker_options_are_one_line(options, message):
    subject = llama()
    before = model_state(subject)
    with pytest.raises(NeuroMagicsError, match=message):
        patch(subject, **options)
    assert_untouched(subject, before)


@pytest.mark.parametrize("options, message", [
    ("--workers 0", "--workers must be at least 1"),
    ("--ray-address 127.0.0.1:6379", "--ray-address needs --workers N"),
    ("--workers 2 --method attribution", "--method attribution is one gradient run here"),
    ("--workers x", "invalid int value"),
    ("--workers 2 --ray-address 127.0.0.1:1", "No Ray cluster answers at 127.0.0.1:1"),
    ("--workers 2 --ray-address bogus", "--ray-address 'bogus' is not a Ray address"),
])
def test_bad_magic_worker_options_are_one_line(shell, options, message):
    subject = llama()
    shell.neuro_magics_session.subject = subject
    before = model_state(subject)
    with pytest.raises(UsageError, match=message) as error:
        shell.run_line_magic("patch", f'--clean "{CLEAN}" --corrupt "{CORRUPT}" --answers e X {options}')
    assert "\n" not in str(error.value)
    assert_untouched(subject, before)
    trace = '--method trace --clean "ab cd" --subject "cd" --workers 2'
    with pytest.raises(UsageError, match="--method trace runs here: drop --workers"):
        shell.run_line_magic("patch", trace)
