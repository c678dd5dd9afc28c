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

BATCH_SIZE = 2  # the 7 texts make 4 batches of uneven width: workers finish them out of order


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
    return nm.checkup(subject, TEXTS, batch_size=BATCH_SIZE, **options)


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


def test_two_workers_give_the_single_process_checkup_bit_for_bit(cluster):
    subject = planted_subject(ablated=False)
    plain = checkup(subject)
    nm.ablate(subject, heads="1.2,3.0")
    here = checkup(subject)
    assert not np.array_equal(plain.head_cosine, here.head_cosine)  # the ablation matters
    assert len(range(0, here.metadata["n_texts"], BATCH_SIZE)) >= 3
    assert "massive_activation" in {f.kind for f in here.findings}
    before = logits(subject), subject.model.config._attn_implementation
    sharded = checkup(subject, workers=2)
    assert_same_checkup(sharded, here)
    assert torch.equal(logits(subject), before[0]) and subject.model.config._attn_implementation == before[1]
    assert len(subject.interventions) == 1 and no_worker_left()


def after_first_batch(monkeypatch, action) -> None:
    """Call ``action()`` when the first batch comes back from the workers."""
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
    """Both workers die after the first batch arrives; the batch next handed to a dead worker
    comes back as a death, is re-queued, and fresh workers finish the corpus."""
    subject = planted_subject()
    here = checkup(subject, spectra=False)
    after_first_batch(monkeypatch, lambda: kill_every_worker(cluster))
    with pytest.warns(NeuroMagicsWarning, match="A Ray worker died"):
        sharded = checkup(subject, spectra=False, workers=2)
    assert_same_checkup(sharded, here)


def test_an_interrupt_stops_the_workers_and_leaves_the_model_as_it_was(cluster, monkeypatch):
    """Ctrl-C in the sharded pass raises, as in the single process (no partial report)."""
    subject = planted_subject()
    before = logits(subject), subject.model.config._attn_implementation

    def interrupt():
        raise KeyboardInterrupt

    after_first_batch(monkeypatch, interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkup(subject, workers=2)
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
