"""``FinetuneConfig``: every training option in one frozen value, checked once, recorded in the
result's metadata as JSON, and the source of ``%%finetune``'s options and their help."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import NeuroMagicsError, check_seed


def _option(default: Any, help: str, *, flag: str | None = None) -> Any:
    """A config field with the help line the magic shows (and its flag, when not ``--name``)."""
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class FinetuneConfig:
    """The options of a LoRA fine-tune. Invalid values are refused when the config is made, in one
    line naming the magic's option, so a fine-tune never starts on a value it would reject later."""

    rank: int = _option(8, "LoRA rank.")
    alpha: float = _option(16.0, "LoRA alpha; the update is scaled by alpha / rank.")
    dropout: float = _option(0.0, "LoRA dropout while training.")
    steps: int = _option(100, "AdamW steps (0 installs an adapter that changes nothing).")
    lr: float = _option(1e-3, "Learning rate.")
    modules: tuple[str, ...] | None = _option(
        None, "Comma-separated linear modules to adapt, e.g. q_proj,v_proj (default: peft's for the architecture).")
    context: int = _option(128, "Tokens per training window.")
    batch_size: int = _option(4, "Windows per step.", flag="--batch")
    seed: int = _option(0, "Initialisation, batch order and dropout.")
    use_rslora: bool = _option(False, "rsLoRA: scale the update by alpha / sqrt(rank).", flag="--rslora")

    def __post_init__(self) -> None:
        modules = self.modules
        if isinstance(modules, str):
            modules = tuple(m.strip() for m in modules.split(",") if m.strip())
        elif modules is not None:
            if not isinstance(modules, Sequence) or not all(isinstance(m, str) for m in modules):
                raise NeuroMagicsError(f"--modules must be module names, e.g. q_proj,v_proj (got {modules!r}).")
            modules = tuple(modules)
        if modules is not None and not modules:
            raise NeuroMagicsError("--modules is empty: name linear modules, e.g. --modules q_proj,v_proj.")
        object.__setattr__(self, "modules", modules)
        _check_number("rank", self.rank, integer=True, low=1)
        _check_number("steps", self.steps, integer=True, low=0)
        _check_number("context", self.context, integer=True, low=2)
        _check_number("batch", self.batch_size, integer=True, low=1)
        check_seed(self.seed)
        _check_number("lr", self.lr, integer=False, low=0, low_open=True)
        _check_number("alpha", self.alpha, integer=False, low=0, low_open=True)
        _check_number("dropout", self.dropout, integer=False, low=0, high=1, high_open=True)
        if not isinstance(self.use_rslora, bool):
            raise NeuroMagicsError(f"use_rslora must be True or False (got {self.use_rslora!r}).")
        for option in self.options():  # numpy numbers as Python's, so the JSON is plain
            if option.type in ("int", "float"):
                object.__setattr__(self, option.name, int(getattr(self, option.name)) if option.type == "int"
                                   else float(getattr(self, option.name)))

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        """The fields, in order, each with ``metadata["help"]`` and ``metadata["flag"]``."""
        return list(dataclasses.fields(cls))

    @staticmethod
    def flag(option: dataclasses.Field) -> str:
        """The magic's flag for a field: ``--name`` unless the field names another."""
        return option.metadata["flag"] or f"--{option.name.replace('_', '-')}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``modules`` as a list); what the result's metadata records."""
        data = dataclasses.asdict(self)
        data["modules"] = None if self.modules is None else list(self.modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """The config ``to_dict`` wrote (checked again: a hand-edited file gets the same refusals)."""
        unknown = sorted(set(data) - {option.name for option in cls.options()})
        if unknown:
            raise NeuroMagicsError(f"{unknown[0]!r} is not a fine-tune option: use "
                                   f"{', '.join(option.name for option in cls.options())}.")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FinetuneConfig:
        return cls.from_dict(json.loads(text))


def _check_number(name: str, value: Any, *, integer: bool, low: float, low_open: bool = False,
                  high: float | None = None, high_open: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    ok = ok and not isinstance(value, bool) and math.isfinite(value) and (value > low if low_open else value >= low)
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        kind = "whole number" if integer else "number"
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        upper = "" if high is None else f" and {'below' if high_open else 'at most'} {high:g}"
        raise NeuroMagicsError(f"--{name} must be a {kind} {bound}{upper} (got {value!r}).")
