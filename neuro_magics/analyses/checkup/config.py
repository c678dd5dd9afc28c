"""The checkup's thresholds (each from the paper that defines the anomaly) and its options
(``CheckupConfig``: checked once, recorded in the result's metadata, the source of %checkup's options)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import NeuroMagicsError

#: Sun et al. 2024: an activation is massive when ``|h| > 100`` and about ``1000x`` the median.
MASSIVE_ABSOLUTE = 100.0
MASSIVE_RATIO = 1000.0
#: Mean attention to the first token above this marks a sink head.
SINK_MASS = 0.5
#: Importance below this fraction of the median head's marks a dead head.
DEAD_HEAD_FRACTION = 1e-3
#: Cosine between two heads' outputs above this marks them redundant.
REDUNDANT_COSINE = 0.95
#: ``max |a|`` below this fraction of the step's median neuron's marks a dead neuron.
DEAD_NEURON_FRACTION = 1e-3
#: A neuron whose spread over the corpus is below this fraction of its mean is saturated (if strong).
SATURATED_SPREAD = 0.05
#: WeightWatcher's range of alpha for well-trained layers.
ALPHA_RANGE = (2.0, 6.0)
#: The logit lens has settled from the first step whose top-1 agrees with the output's this often.
LENS_AGREEMENT = 0.5
SEVERITIES = ("high", "medium", "info")
LENS_POSITIONS = 4  # last positions of each text read through the logit lens


def _option(default: Any, help: str, *, flag: str | None = None) -> Any:
    """A config field with the help line the magic shows (and its flag, when not ``--name``)."""
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class CheckupConfig:
    """The options of a checkup. Invalid values are refused when the config is made, in one line
    naming the magic's option, before any text is read."""

    max_texts: int = _option(24, "Texts read from the corpus (spread over it).")
    max_tokens: int = _option(48, "Tokens kept of each text (at least 2: one to predict).")
    batch_size: int = _option(8, "Texts per batch of the corpus passes.")
    spectra: bool = _option(True, "Skip the weight spectra (power-law alpha per matrix).", flag="--no-spectra")

    def __post_init__(self) -> None:
        for name, low in (("max_texts", 1), ("max_tokens", 2), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise NeuroMagicsError(f"--{name.replace('_', '-')} must be a whole number of at least {low} "
                                       f"(got {value!r}).")
            object.__setattr__(self, name, int(value))  # numpy numbers as Python's, so the JSON is plain
        if not isinstance(self.spectra, bool):
            raise NeuroMagicsError(f"spectra must be True or False (got {self.spectra!r}).")

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        """The fields, in order, each with ``metadata["help"]`` and ``metadata["flag"]``."""
        return list(dataclasses.fields(cls))

    @staticmethod
    def flag(option: dataclasses.Field) -> str:
        """The magic's flag for a field: ``--name`` unless the field names another (a ``--no-``
        flag turns a field that defaults to True off)."""
        return option.metadata["flag"] or f"--{option.name.replace('_', '-')}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; what the result's metadata records."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckupConfig:
        """The config ``to_dict`` wrote (checked again)."""
        unknown = sorted(set(data) - {option.name for option in cls.options()})
        if unknown:
            raise NeuroMagicsError(f"{unknown[0]!r} is not a checkup option: use "
                                   f"{', '.join(option.name for option in cls.options())}.")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CheckupConfig:
        return cls.from_dict(json.loads(text))
