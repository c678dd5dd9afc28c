"""Integration tests on the real default model, SmolLM2-135M-Instruct (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

import neuro_magics as nm

pytestmark = pytest.mark.integration

PROMPTS = ["The capital of France is", "In 1969 the first person to walk on the moon was"]


def test_default_model_facts(default_subject):
    summary = default_subject.summary()
    assert summary.architecture == "LlamaForCausalLM"
    assert (summary.n_layers, summary.d_model, summary.vocab_size) == (30, 576, 49152)
    assert (summary.n_heads, summary.n_kv_heads) == (9, 3)
    assert 130e6 < summary.n_parameters < 140e6


def test_greedy_generation_makes_sense(default_subject):
    assert default_subject.generate("The capital of France is", max_new_tokens=4).startswith(" Paris")


@torch.no_grad()
def test_runner_matches_hf_on_the_real_model(default_subject):
    encoded = default_subject.encode(PROMPTS)
    model = default_subject.model
    reference = model(**encoded, position_ids=nm.core.runner.position_ids_for(encoded["attention_mask"]),
                      use_cache=False, output_hidden_states=True)
    out = nm.run(default_subject, nm.prepare(default_subject, encoded["input_ids"], encoded["attention_mask"]),
                 capture=nm.Capture(sites=("resid_post",)), logits_at="all")
    assert torch.equal(out.logits, reference.logits)
    for step in range(default_subject.n_layers - 1):
        assert torch.equal(out.captures["resid_post"][step], reference.hidden_states[step + 1])
    lens = nm.unembed(default_subject, out.captures["resid_post"][-1], "all")
    assert torch.equal(lens, reference.logits)


@torch.no_grad()
def test_duplicated_program_on_the_real_model(default_subject):
    encoded = default_subject.encode(PROMPTS[0])
    reference = default_subject.model(**encoded).logits
    program = nm.LayerProgram.duplicate(default_subject.n_layers, 10, 16)
    parameters = sorted(p.data_ptr() for p in default_subject.model.parameters())
    with default_subject.program_applied(program):
        logits = default_subject.model(**encoded, use_cache=False).logits
        runner = nm.run(default_subject, nm.prepare(default_subject, encoded["input_ids"]), logits_at="all").logits
        torch.testing.assert_close(runner, logits, rtol=0, atol=1e-4)
        assert sorted(p.data_ptr() for p in default_subject.model.parameters()) == parameters
        assert not torch.allclose(logits, reference)
        generated = default_subject.model.generate(
            **encoded, max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True,
            pad_token_id=default_subject.tokenizer.pad_token_id,
        )
        sequence = encoded["input_ids"]
        for step_logits in generated.logits:
            full = default_subject.model(sequence, use_cache=False).logits[:, -1]
            torch.testing.assert_close(step_logits, full, rtol=0, atol=1e-4)
            sequence = torch.cat([sequence, full.argmax(-1, keepdim=True)], dim=1)
        assert torch.equal(generated.sequences, sequence)
    assert default_subject.program.is_identity
    assert torch.equal(default_subject.model(**encoded).logits, reference)


def test_prompt_longer_than_the_context_is_one_line(default_subject):
    with pytest.raises(nm.NeuroMagicsError, match="context") as info:
        default_subject.encode("word " * 9000)
    assert "\n" not in str(info.value)


def test_magics_on_the_default_model(shell, default_subject, capsys):
    """%load_model really loads the default model (from the converted cache: seconds)."""
    subject = shell.run_line_magic("load_model", "--device cpu --dtype float32")
    assert subject is shell.neuro_magics_session.subject and subject is not default_subject
    assert subject.name == nm.DEFAULT_MODEL and "Loaded SmolLM2-135M-Instruct" in capsys.readouterr().out
    assert subject.summary().n_layers == 30 and subject.dtype == torch.float32
    for loaded, reference in zip(subject.model.parameters(), default_subject.model.parameters(), strict=True):
        assert torch.equal(loaded, reference)
    assert subject.generate("The capital of France is", max_new_tokens=4).startswith(" Paris")
    assert shell.run_line_magic("load_model", "") is subject
    assert "already loaded" in capsys.readouterr().out
    shown = shell.run_line_magic("model", "")
    assert shown is subject and "SmolLM2-135M-Instruct" in repr(shown) and "identity" in repr(shown)


def test_default_model_loads_from_cache(default_subject):
    again = nm.load_model(device="cpu", dtype="float32")
    assert again.name == nm.DEFAULT_MODEL
    for a, b in zip(again.model.parameters(), default_subject.model.parameters()):
        assert torch.equal(a, b)
