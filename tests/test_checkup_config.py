"""CheckupConfig: the checkup's options as one frozen value, checked once, recorded in the
result's metadata, read back from JSON, and the source of %checkup's options. Oracles:
dictionaries written out by hand here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from IPython.core.error import UsageError
from test_checkup import TEXTS, _subject
from tiny_models import tiny_model

import neuro_magics as nm
from neuro_magics.analyses.checkup import CheckupConfig, checkup

#: Every option away from its default.
OPTIONS = {"max_texts": 5, "max_tokens": 20, "batch_size": 2, "spectra": False}


def test_the_config_round_trips_through_json_as_plain_values():
    config = CheckupConfig(**{**OPTIONS, "max_texts": np.int64(5)})
    assert json.loads(config.to_json()) == OPTIONS and type(json.loads(config.to_json())["max_texts"]) is int
    assert CheckupConfig.from_json(config.to_json()) == config
    with pytest.raises(nm.NeuroMagicsError, match="'max_text' is not a checkup option"):
        CheckupConfig.from_dict({"max_text": 3})


@pytest.mark.parametrize("options, message", [
    ({"max_texts": 0}, "--max-texts must be a whole number of at least 1 (got 0)"),
    ({"max_tokens": 1}, "--max-tokens must be a whole number of at least 2 (got 1)"),
    ({"batch_size": 2.0}, "--batch-size must be a whole number of at least 1 (got 2.0)"),
    ({"batch_size": True}, "--batch-size must be a whole number"),
    ({"spectra": 1}, "spectra must be True or False"),
])
def test_a_bad_option_is_refused_in_one_line(options, message):
    with pytest.raises(nm.NeuroMagicsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CheckupConfig(**options)


def test_the_metadata_records_the_config_and_keywords_equal_a_config():
    subject = _subject(tiny_model("llama"))
    by_keywords = checkup(subject, TEXTS, **OPTIONS)
    assert by_keywords.metadata["config"] == OPTIONS and by_keywords.metadata["n_texts"] == 5
    assert by_keywords.alpha.size == 0  # spectra=False reached the run
    by_config = checkup(subject, TEXTS, config=CheckupConfig(**OPTIONS))
    np.testing.assert_array_equal(by_config.sink_mass, by_keywords.sink_mass)
    with pytest.raises(nm.NeuroMagicsError, match=r"either as config= or as keywords, not both .*max_texts="):
        checkup(subject, TEXTS, config=CheckupConfig(), max_texts=3)


def test_the_magic_takes_its_options_from_the_config_fields(shell):
    shell.neuro_magics_session.subject = _subject(tiny_model("llama"))
    help_text = shell.find_line_magic("checkup").__doc__
    for usage in ("--max-texts MAX_TEXTS", "--max-tokens MAX_TOKENS", "--batch-size BATCH_SIZE", "--no-spectra"):
        assert f"[{usage}]" in help_text, usage
    for option in CheckupConfig.options():
        assert option.metadata["help"].rstrip(".")[:25] in " ".join(help_text.split()), option.name
    result = shell.run_line_magic("checkup", "--corpus builtin --max-texts 5 --max-tokens 20 --batch-size 2 --no-spectra")
    assert result.metadata["config"] == OPTIONS
    assert shell.run_line_magic("checkup", "--max-texts 2 --max-tokens 8").metadata["config"] == {
        "max_texts": 2, "max_tokens": 8, "batch_size": 8, "spectra": True}
    with pytest.raises(UsageError, match="--batch-size must be a whole number of at least 1"):
        shell.run_line_magic("checkup", "--batch-size 0")
