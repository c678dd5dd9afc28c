"""FinetuneConfig: one frozen value for a fine-tune's options, checked once, recorded in the
result's metadata, read back from JSON, and the source of %%finetune's options.

Oracles: dictionaries and JSON written out by hand here; the fine-tune the recorded config
reproduces (same adapter hash); a result file in the format written before the config existed.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from IPython.core.error import UsageError
from tiny_models import tiny_model, tiny_tokenizer

import neuro_magics as nm
from neuro_magics.analyses import finetune as ft
from neuro_magics.core.loading import cache_dir

TEXT = "The quick brown fox jumps over the lazy dog. " * 12
#: Every option away from its default, so a field read from the wrong place shows.
OPTIONS = {"rank": 3, "alpha": 4.0, "dropout": 0.125, "steps": 2, "lr": 0.02, "modules": ["q_proj"], "context": 16,
           "batch_size": 2, "seed": 5, "use_rslora": True}


@pytest.fixture(autouse=True)
def adapter_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURO_MAGICS_CACHE", str(tmp_path / "cache"))


def llama() -> nm.Subject:
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def test_the_config_round_trips_through_json_as_plain_values():
    config = nm.FinetuneConfig(**{**OPTIONS, "rank": np.int64(3), "modules": "q_proj"})
    assert json.loads(config.to_json()) == OPTIONS  # numpy numbers and "a,b" strings come out plain
    assert type(json.loads(config.to_json())["rank"]) is int
    assert nm.FinetuneConfig.from_json(config.to_json()) == config
    assert config.modules == ("q_proj",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rank = 4


@pytest.mark.parametrize("options, message", [
    ({"rank": 0}, "--rank must be a whole number at least 1 (got 0)"),
    ({"rank": 2.5}, "--rank must be a whole number"),
    ({"steps": -1}, "--steps must be a whole number at least 0"),
    ({"context": 1}, "--context must be a whole number at least 2"),
    ({"batch_size": 0}, "--batch must be a whole number at least 1"),
    ({"seed": -1}, "--seed must be a whole number from 0"),
    ({"lr": 0.0}, "--lr must be a number above 0"),
    ({"alpha": float("nan")}, "--alpha must be a number above 0"),
    ({"dropout": 1.0}, "--dropout must be a number at least 0 and below 1"),
    ({"modules": ""}, "--modules is empty"),
    ({"modules": [3]}, "--modules must be module names"),
    ({"use_rslora": "yes"}, "use_rslora must be True or False"),
])
def test_a_bad_option_is_refused_in_one_line_naming_the_magics_option(options, message):
    with pytest.raises(nm.NeuroMagicsError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        nm.FinetuneConfig(**options)
    assert "\n" not in str(caught.value)


def test_from_dict_refuses_an_unknown_option():
    with pytest.raises(nm.NeuroMagicsError, match="'ranks' is not a fine-tune option"):
        nm.FinetuneConfig.from_dict({"ranks": 3})


def test_the_metadata_records_the_config_that_ran_and_it_reproduces_the_adapter():
    """Oracle: the hand-written OPTIONS; then a second fine-tune from the recorded config alone
    must give the same adapter (its weights' sha256) and losses."""
    result = nm.finetune(llama(), TEXT, **OPTIONS, progress=False)
    assert result.metadata["config"] == OPTIONS
    assert result.metadata["targets"] == [f"{block}.self_attn.q_proj" for block in range(4)]
    assert result.config == nm.FinetuneConfig(**OPTIONS)
    again = nm.finetune(llama(), TEXT, config=nm.FinetuneConfig.from_json(json.dumps(result.metadata["config"])),
                        progress=False)
    assert again.sha256 == result.sha256 and list(again.loss) == list(result.loss)


def test_config_and_keywords_together_are_refused_before_any_work():
    subject = llama()
    with pytest.raises(nm.NeuroMagicsError, match=r"either as config= or as keywords, not both .*rank="):
        nm.finetune(subject, TEXT, config=nm.FinetuneConfig(steps=1), rank=4, progress=False)
    assert subject.interventions == () and not (cache_dir() / "adapters").exists()


def test_a_result_saved_before_the_config_existed_still_loads_with_its_config(tmp_path):
    """The old metadata kept each option as a loose key and ``modules`` as the resolved targets."""
    targets = [f"{block}.self_attn.{name}" for block in range(4) for name in ("q_proj", "v_proj")]
    old = {"model": "tiny-llama", "analysis": "finetune", "rank": 2, "alpha": 4.0, "dropout": 0.0, "steps": 3,
           "lr": 0.01, "modules": targets, "context": 32, "batch_size": 4, "seed": 0, "use_rslora": False,
           "n_tokens": 96, "text_sha256": "0" * 64}
    saved = ft.FinetuneResult(loss=np.array([2.0, 1.5, 1.0], dtype=np.float32), rank=2, alpha=4.0, targets=targets,
                              steps=3, interrupted=False, adapter_path=None, sha256=None, seconds=1.0, n_tokens=96,
                              metadata=old)
    loaded = nm.load_result(saved.save(tmp_path / "old.nm"))
    assert loaded.config == nm.FinetuneConfig(rank=2, alpha=4.0, steps=3, lr=0.01, context=32,
                                              modules=("self_attn.q_proj", "self_attn.v_proj"))
    assert loaded.blocks == [0, 1, 2, 3]


def test_the_magic_takes_its_options_from_the_config_fields(tiny_in_shell, shell):
    """Every config field is an option of %%finetune with the field's help, and each flag lands
    in its own field (oracle: the hand-written OPTIONS)."""
    help_text = shell.find_line_magic("finetune").__doc__
    for usage in ("--rank RANK", "--alpha ALPHA", "--dropout DROPOUT", "--steps STEPS", "--lr LR", "--modules MODULES",
                  "--context CONTEXT", "--batch BATCH", "--seed SEED", "--rslora"):
        assert f"[{usage}]" in help_text, usage  # the flags as documented (argparse also takes prefixes)
    for option in nm.FinetuneConfig.options():
        flag = nm.FinetuneConfig.flag(option)
        assert flag in help_text and option.metadata["help"].rstrip(".")[:30] in " ".join(help_text.split()), flag
    line = ("--lora --rank 3 --alpha 4 --dropout 0.125 --steps 2 --lr 0.02 --modules q_proj --context 16 --batch 2 "
            "--seed 5 --rslora")
    result = shell.run_cell_magic("finetune", line, TEXT)
    assert result.config == nm.FinetuneConfig(**OPTIONS)
    with pytest.raises(UsageError, match="--rank must be a whole number at least 1"):
        shell.run_cell_magic("finetune", "--lora --rank 0", TEXT)
