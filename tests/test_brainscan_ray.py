"""The brain scan sharded over Ray workers (``workers=N``) on a local two-CPU cluster.

Oracle: the single-process sweep on the same subject, itself checked cell by cell against
each program applied the ordinary way (``test_brainscan.py``); a few cells are checked here
against that ordinary HF forward too. Workers compute each start row exactly as the single
process does (same batching), so the numbers must be bit-identical in fp32.

Without Ray these tests skip, except under ``make test`` (NEURO_MAGICS_REQUIRE_TOOLS=1),
which installs Ray and where a missing Ray fails them.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.analyses.brain_scan import BrainScanResult
from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from ray_cluster import cluster, one_thread, ray  # noqa: F401 (shared fixtures)
from test_brainscan import ITEMS, assert_untouched, model_state, ordinary_score
from tiny_models import tiny_model, tiny_tokenizer



def llama() -> nm.Subject:
    return nm.Subject(tiny_model("llama"), tiny_tokenizer())


@pytest.fixture(scope="module")
def reference() -> BrainScanResult:
    """The single-process sweep (rows chunked one end at a time, blocks run three times)."""
    return nm.brainscan(llama(), items=ITEMS, times=2, batch_tokens=1, progress=False)


def assert_same_sweep(got: BrainScanResult, expected: BrainScanResult) -> None:
    assert got.complete and not got.interrupted
    for name in ("item_scores", "scores", "baseline_items", "block_influence", "angular_distance"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_two_workers_give_the_single_process_sweep_bit_for_bit(cluster, reference):
    subject = llama()
    before = model_state(subject)
    result = nm.brainscan(subject, items=ITEMS, times=2, batch_tokens=1, progress=False, workers=2)
    assert_same_sweep(result, reference)
    n = subject.n_layers
    for i, j in ((0, 1), (1, 4), (2, 3)):
        expected = ordinary_score(subject, nm.LayerProgram.duplicate(n, i, j, 2), ITEMS)
        np.testing.assert_allclose(result.item_scores[i, j], expected, atol=1e-4, rtol=0, err_msg=f"cell ({i}, {j})")
    assert_untouched(subject, before)
    assert not [name for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]


def kill_every_worker(ray) -> None:
    """Kill the sweep's workers and wait until Ray reports them dead."""
    actors = [ray.get_actor(name) for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]
    assert actors
    for actor in actors:
        ray.kill(actor)
    deadline = time.monotonic() + 60
    for actor in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(actor.ready.remote(), timeout=10)
            except ray.exceptions.RayActorError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("a killed worker stayed alive")


def test_workers_killed_mid_sweep_are_replaced_and_the_numbers_are_the_same(cluster, reference, tmp_path, monkeypatch):
    """The workers are killed when the first row is saved (one idle, one busy or idle): the
    next row handed to a dead worker comes back as a death, is re-queued, and fresh workers
    finish the sweep. The save file is written as each row arrives."""
    saved = BrainScanResult.save_atomic
    finished_at_each_save = []

    def save_and_kill_at_first(result, path):
        finished_at_each_save.append(result.n_finished)
        if len(finished_at_each_save) == 1:
            kill_every_worker(cluster)
        return saved(result, path)

    monkeypatch.setattr(BrainScanResult, "save_atomic", save_and_kill_at_first)
    with pytest.warns(NeuroMagicsWarning, match="A Ray worker died"):
        result = nm.brainscan(llama(), items=ITEMS, times=2, batch_tokens=1, progress=False, workers=2,
                              save=tmp_path / "scan.npz")
    assert_same_sweep(result, reference)
    assert_same_sweep(nm.load_result(tmp_path / "scan.npz"), reference)
    # One save per start row as it arrived (each adds that row's cells), then the final one.
    row_sizes = sorted(np.diff([0, *finished_at_each_save[:-1]]).tolist())
    assert row_sizes == [1, 2, 3, 4] and finished_at_each_save[-1] == reference.n_configs


def test_resume_after_an_interrupt_with_another_worker_count(cluster, reference, tmp_path, monkeypatch):
    saved = BrainScanResult.save_atomic
    calls = []

    def interrupt_after_first_row(result, path):
        calls.append(result.n_finished)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return saved(result, path)

    monkeypatch.setattr(BrainScanResult, "save_atomic", interrupt_after_first_row)
    path = tmp_path / "scan.npz"
    subject = llama()
    before = model_state(subject)
    partial = nm.brainscan(subject, items=ITEMS, times=2, batch_tokens=1, progress=False, workers=2, save=path)
    assert partial.interrupted and 0 < partial.n_finished < reference.n_configs
    assert_untouched(subject, before)
    on_disk = nm.load_result(path)
    assert on_disk.n_finished == partial.n_finished and on_disk.interrupted
    monkeypatch.setattr(BrainScanResult, "save_atomic", saved)
    resumed = nm.brainscan(subject, items=ITEMS, times=2, batch_tokens=1, progress=False, workers=1, resume=path)
    assert_same_sweep(resumed, reference)
    assert_same_sweep(nm.load_result(path), reference)


def test_workers_carry_the_subjects_ablation_steering_and_pruned_weights(cluster, reference):
    subject = llama()
    nm.ablate(subject, heads="1.2,3.0")
    nm.steer(subject, layer=2, coef=0.05, vector=torch.linspace(-1, 1, subject.d_model))
    nm.prune(subject, "magnitude", 0.5, corpus="builtin")
    assert len(subject.interventions) == 3
    here = nm.brainscan(subject, items=ITEMS, times=2, batch_tokens=1, progress=False)
    assert not np.allclose(here.item_scores, reference.item_scores, equal_nan=True)  # the state matters
    sharded = nm.brainscan(subject, items=ITEMS, times=2, batch_tokens=1, progress=False, workers=2)
    assert_same_sweep(sharded, here)


def test_without_ray_workers_say_how_to_install_it_and_change_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    subject = llama()
    before = model_state(subject)
    with pytest.raises(NeuroMagicsError, match=r"pip install 'neuro-magics\[distributed\]'"):
        nm.brainscan(subject, items=ITEMS, progress=False, workers=2)
    assert_untouched(subject, before)


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "--workers must be at least 1"),
    ({"ray_address": "127.0.0.1:6379"}, "--ray-address needs --workers N"),
])
def test_bad_worker_options_are_one_line(options, message):
    subject = llama()
    before = model_state(subject)
    with pytest.raises(NeuroMagicsError, match=message):
        nm.brainscan(subject, items=ITEMS, progress=False, **options)
    assert_untouched(subject, before)


def test_an_intervention_that_cannot_be_rebuilt_is_refused_before_any_work(cluster):
    subject = llama()
    unknown = dataclasses.replace(nm.ablate(subject, heads="1.2", install=False), kind="no_such_kind")
    subject.add_intervention(unknown)
    before = model_state(subject)
    with pytest.raises(NeuroMagicsError, match="cannot be shipped to Ray workers"):
        nm.brainscan(subject, items=ITEMS, progress=False, workers=2)
    assert_untouched(subject, before)
    assert subject.interventions == (unknown,)


class _Resources:
    """A stand-in for the ``ray`` module: only ``cluster_resources``."""

    def __init__(self, cpus: float, gpus: float) -> None:
        self.resources = {"CPU": cpus, "GPU": gpus}

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.resources)


@pytest.mark.parametrize("cpus, gpus, workers, device, expected", [
    (16, 0, 4, "cpu", {"num_cpus": 4}),
    (2, 0, 4, "cpu", {"num_cpus": 0.5}),
    (16, 2, 2, "cuda", {"num_gpus": 1, "num_cpus": 1.0}),
    (16, 8, 3, "cuda", {"num_gpus": 1, "num_cpus": 1.0}),
])
def test_each_worker_gets_one_gpu_or_an_equal_share_of_the_cpus(monkeypatch, cpus, gpus, workers, device, expected):
    """The resources each actor asks Ray for (hand-computed): one whole GPU per worker of a
    CUDA model, never a shared one; otherwise the cluster's CPUs split evenly."""
    from neuro_magics.core.distributed import _actor_options

    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    subject = dataclasses.make_dataclass("Stub", ["device"])(torch.device(device))
    options, threads = _actor_options(_Resources(cpus, gpus), subject, workers)
    assert options == expected
    assert threads == max(1, int(cpus // workers))  # torch threads: the worker's share of the CPUs


@pytest.mark.parametrize("gpus, advice", [(1, "use --workers 1 or fewer"), (0, "load the model with --device cpu")])
def test_more_cuda_workers_than_gpus_is_one_line(gpus, advice):
    from neuro_magics.core.distributed import _actor_options

    subject = dataclasses.make_dataclass("Stub", ["device"])(torch.device("cuda"))
    with pytest.raises(NeuroMagicsError, match=f"--workers 2 needs 2 GPUs \\(one per worker\\); this Ray cluster has "
                                               f"{gpus}: {advice}"):
        _actor_options(_Resources(16, gpus), subject, 2)
