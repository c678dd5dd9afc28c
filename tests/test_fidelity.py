"""The fidelity check on every load: our runner's logits against HF's own forward."""

from __future__ import annotations

import pytest
import torch

import neuro_magics as nm
from neuro_magics.core import runner
from neuro_magics.core.fidelity import FIDELITY_PROMPT, check_fidelity
from tiny_models import FAMILIES, tiny_model, tiny_tokenizer


@pytest.mark.parametrize("family", FAMILIES)
def test_runner_matches_hf_forward_on_every_family(family):
    model = tiny_model(family)
    subject = nm.Subject(model, tiny_tokenizer(), name=family)
    fidelity = check_fidelity(subject)
    # The independent number: HF's forward on the same ids, by hand, against a runner we
    # trust only through this test's own comparison of the last position's logits.
    ids = subject.encode(FIDELITY_PROMPT)["input_ids"]
    with torch.no_grad():
        hf = model(input_ids=ids).logits
        ours = nm.run(subject, nm.prepare(subject, ids), logits_at="all").logits
    assert fidelity.n_tokens == ids.shape[1]
    assert fidelity.max_abs_dlogit == pytest.approx((ours - hf).abs().max().item(), abs=1e-6)
    assert fidelity.matches and fidelity.max_abs_dlogit <= 1e-4
    assert "matches HF" in fidelity.line()


def test_a_runner_that_departs_from_hf_is_reported(monkeypatch):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="llama")
    real_unembed = runner.unembed
    monkeypatch.setattr(runner, "unembed", lambda s, resid, positions="all": real_unembed(s, resid + 0.5, positions))
    fidelity = check_fidelity(subject)
    assert not fidelity.matches and fidelity.max_abs_dlogit > 1e-3
    assert fidelity.line().startswith("DOES NOT match HF")


def test_check_runs_on_the_original_blocks_and_leaves_the_program(monkeypatch):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="llama")
    program = nm.LayerProgram([0, 1, 2, 1, 2, 3], subject.n_layers)
    subject.set_program(program)
    assert check_fidelity(subject).max_abs_dlogit <= 1e-4
    assert tuple(subject.program) == tuple(program)


def test_load_model_records_it_and_model_shows_it(tmp_path):
    model = tiny_model("qwen2")
    model.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    subject = nm.load_model(str(tmp_path), device="cpu")
    assert subject.fidelity is not None and subject.fidelity.matches
    assert "matches HF: max |dlogit|" in repr(subject)
    assert subject.fidelity.to_dict()["matches"] is True
