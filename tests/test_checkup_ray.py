"""The checkup's corpus batches sharded over Ray workers (``workers=N``), on a local two-CPU
cluster shared by the whole module.

Oracle: the single-process checkup on the same subject, itself checked against HF hooks,
HF ``output_attentions``, finite differences and planted ground truth (``test_checkup.py``,
oracles 26-28). Each batch is reduced into its own partial by the same code in both paths and
the driver merges the partials in batch order, with the same thread count everywhere, so every
array, finding and metadata field must be bit-identical in fp32. The subject carries a planted
massive activation (so partial massive-activation records are merged) and an installed head
ablation (the workers must rebuild it: without it the numbers differ).

Without Ray these tests skip, except under ``make test`` (NEURO_MAGICS_REQUIRE_TOOLS=1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
import neuro_magics.core.distributed as distributed
from neuro_magics.analyses.checkup import CheckupResult
from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from ray_cluster import cluster, one_thread, ray  # noqa: F401 (shared fixtures)
from test_brainscan_ray import kill_every_worker
from test_checkup import MASSIVE_DIM, TEXTS, _first_token_id
from tiny_models import tiny_model, tiny_tokenizer

#: Shortest first, one text per batch, none cut: workers get the batches largest first, so they
#: come back roughly last-first and the driver must hold them back to merge in batch order.
CORPUS = sorted(TEXTS, key=len)
BATCH_SIZE, MAX_TOKENS = 1, 80


def planted_subject(ablated: bool = True) -> nm.Subject:
    """A tiny Llama whose first token ("T") carries a massive embedding dim, with two heads ablated."""
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.embed_tokens.weight[_first_token_id(), MASSIVE_DIM] = 400.0
    subject = nm.Subject(model, tiny_tokenizer(), name="tiny-llama")
    if ablated:
        nm.ablate(subject, heads="1.2,3.0")
    return subject


def checkup(subject: nm.Subject, **options) -> CheckupResult:
    return nm.checkup(subject, CORPUS, batch_size=BATCH_SIZE, max_tokens=MAX_TOKENS, **options)


def assert_same_checkup(got: CheckupResult, expected: CheckupResult) -> None:
    for name in CheckupResult.ARRAYS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert got.findings == expected.findings
    assert got.matrix_names == expected.matrix_names and got.program_steps == expected.program_steps
    assert {**got.metadata, "created": None} == {**expected.metadata, "created": None}


def logits(subject: nm.Subject) -> torch.Tensor:
    with torch.no_grad():
        return subject.model(torch.tensor([[5, 9, 17, 33, 60]]), use_cache=False).logits


def no_worker_left() -> bool:
    return not [name for name in ray.util.list_named_actors() if name.startswith("neuro_magics-")]


def watch_batches(monkeypatch, after_first=None) -> list[int]:
    """The batch indices in the order the workers return them; ``after_first()`` is called
    once the first one is recorded."""
    run_sharded, arrivals = distributed.run_sharded, []

    def wrapped(*args, on_result, **kwargs):
        def record(unit, value):
            arrivals.append(unit)
            on_result(unit, value)
            if len(arrivals) == 1 and after_first is not None:
                after_first()

        return run_sharded(*args, on_result=record, **kwargs)

    monkeypatch.setattr(distributed, "run_sharded", wrapped)
    return arrivals


def test_two_workers_give_the_single_process_checkup_bit_for_bit(cluster, monkeypatch):
    """With an ablation installed (it changes the numbers: the workers must rebuild it); the
    batches come back out of order."""
    subject = planted_subject(ablated=False)
    plain = checkup(subject)
    nm.ablate(subject, heads="1.2,3.0")
    here = checkup(subject)
    assert not np.array_equal(plain.head_cosine, here.head_cosine)  # the ablation matters
    assert "massive_activation" in {f.kind for f in here.findings}
    before = logits(subject), subject.model.config._attn_implementation
    arrivals = watch_batches(monkeypatch)
    sharded = checkup(subject, workers=2)
    assert arrivals != sorted(arrivals) and sorted(arrivals) == list(range(len(CORPUS)))
    assert_same_checkup(sharded, here)
    assert torch.equal(logits(subject), before[0]) and subject.model.config._attn_implementation == before[1]
    assert len(subject.interventions) == 1 and no_worker_left()


def test_batch_partials_merge_into_the_one_batch_totals():
    """The merge itself (both paths use it), against one batch holding every text (no merge):
    the same arrays up to fp32 rounding, the same massive-activation findings, whose corpus
    means, counts, positions and tokens are summed across the partials."""
    subject = planted_subject()
    merged = checkup(subject, spectra=False)
    whole = nm.checkup(subject, CORPUS, batch_size=len(CORPUS), max_tokens=MAX_TOKENS, spectra=False)
    for name in set(CheckupResult.ARRAYS) - {"resid_median", "alpha"}:  # a median of medians is not the median
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-5, atol=1e-7, err_msg=name)
    massive = [[f for f in result.findings if f.kind == "massive_activation"] for result in (merged, whole)]
    assert massive[0] and len(massive[0]) == len(massive[1])
    for got, expected in zip(*massive):
        assert (got.title, got.explanation, got.dim, got.token) == (expected.title, expected.explanation, expected.dim,
                                                                    expected.token)
        assert [(b["block"], b["dims"]) for b in got.action["blocks"]] == [(b["block"], b["dims"])
                                                                           for b in expected.action["blocks"]]
        np.testing.assert_allclose([b["means"] for b in got.action["blocks"]],
                                   [b["means"] for b in expected.action["blocks"]], rtol=1e-6)


def test_killed_workers_are_replaced_and_the_numbers_are_the_same(cluster, monkeypatch):
    """Both workers die after the first batch arrives; the batch next handed to a dead worker
    comes back as a death, is re-queued, and fresh workers finish the corpus."""
    subject = planted_subject()
    here = checkup(subject, spectra=False)
    watch_batches(monkeypatch, lambda: kill_every_worker(cluster))
    with pytest.warns(NeuroMagicsWarning, match="A Ray worker died"):
        sharded = checkup(subject, spectra=False, workers=2)
    assert_same_checkup(sharded, here)


def test_an_interrupt_in_the_magic_stops_the_workers_and_leaves_the_model_as_it_was(cluster, monkeypatch, shell):
    """``%checkup --workers 2`` reaches the workers; Ctrl-C after its first of three batches
    raises, as in the single process (no partial report)."""
    subject = planted_subject()
    shell.neuro_magics_session.subject = subject
    before = logits(subject), subject.model.config._attn_implementation

    def interrupt():
        raise KeyboardInterrupt

    arrivals = watch_batches(monkeypatch, interrupt)
    with pytest.raises(KeyboardInterrupt):
        shell.run_line_magic("checkup", "--max-texts 24 --max-tokens 16 --no-spectra --workers 2")
    assert len(arrivals) == 1
    assert torch.equal(logits(subject), before[0]) and subject.model.config._attn_implementation == before[1]
    assert len(subject.interventions) == 1 and no_worker_left()


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "--workers must be at least 1"),
    ({"workers": 1.5}, "workers must be a whole number"),
    ({"ray_address": "127.0.0.1:6379"}, "--ray-address needs --workers N"),
])
def test_bad_worker_options_are_one_line(options, message):
    subject = planted_subject()
    before = logits(subject)
    with pytest.raises(NeuroMagicsError, match=message) as error:
        checkup(subject, **options)
    assert "\n" not in str(error.value)
    assert torch.equal(logits(subject), before) and len(subject.interventions) == 1


@pytest.mark.parametrize("options, message", [
    ("--workers 0", "--workers must be at least 1"),
    ("--ray-address 127.0.0.1:6379", "--ray-address needs --workers N"),
    ("--workers x", "invalid int value"),
])
def test_bad_magic_worker_options_are_one_line(shell, options, message):
    subject = planted_subject()
    shell.neuro_magics_session.subject = subject
    before = logits(subject)
    with pytest.raises(UsageError, match=message) as error:
        shell.run_line_magic("checkup", options)
    assert "\n" not in str(error.value)
    assert torch.equal(logits(subject), before) and len(subject.interventions) == 1
