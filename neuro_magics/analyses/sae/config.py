"""How an SAE is trained, as one value: validated once, written to JSON and read back, recorded
in the result's metadata and shown as the ``%sae train`` options (their help comes from here),
as SAELens's and sparsify's configs are.

Where the SAE reads: ``step`` is a position in the current layer program, ``block`` an original
layer of the model; give either (both must agree). Under a duplicated program a block runs at
several steps, so only ``step`` names one of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ...core.errors import NeuroMagicsError, check_seed
from ...core.subject import Subject

#: Sites an SAE reads: one d_model vector per token.
SAE_SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out")


def _option(default: Any, help: str, flag: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class SaeTrainingConfig:
    """Everything ``train_sae`` needs besides the texts and how it runs (progress, workers)."""

    step: int | None = _option(None, "the program step whose site is read (a position in the layer program)")
    block: int | None = _option(None, "or: the original block whose site is read (it must run at exactly one step)")
    site: str = _option("resid_post", "the activations to decompose: " + ", ".join(SAE_SITES))
    expansion: int = _option(4, "features per model dimension (4: 4 x d_model features)")
    k: int = _option(32, "active features per token (TopK)")
    steps: int = _option(300, "Adam updates (optimizer steps, not program steps)")
    batch_size: int = _option(1024, "tokens per Adam update", flag="batch")
    lr: float = _option(1e-3, "Adam's learning rate")
    seed: int = _option(0, "initialisation and batch order")

    def __post_init__(self) -> None:
        if self.step is None and self.block is None:
            raise NeuroMagicsError("Say where the SAE reads: --step N (program step) or --block N (original block).")
        for name in ("step", "block"):
            value = getattr(self, name)
            if value is not None and (not _whole(value) or value < 0):
                raise NeuroMagicsError(f"--{name} must be a whole number from 0 (got {value!r}).")
        if self.site not in SAE_SITES:
            raise NeuroMagicsError(f"Unknown site {self.site!r} for an SAE: use one of {', '.join(SAE_SITES)}.")
        for name in ("expansion", "k", "steps", "batch_size"):
            value = getattr(self, name)
            if not _whole(value) or value < 1:
                raise NeuroMagicsError(f"--{self.flag(name)} must be a positive whole number (got {value!r}).")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr)
                                                                                    and self.lr > 0):
            raise NeuroMagicsError(f"--lr must be a positive number (got {self.lr!r}).")
        check_seed(self.seed)
        for name in ("step", "block", "expansion", "k", "steps", "batch_size", "seed"):  # numpy ints -> JSON ints
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "lr", float(self.lr))

    # -- where it reads, on a subject --------------------------------------------------------------

    def resolved(self, subject: Subject) -> SaeTrainingConfig:
        """This config with both ``step`` and ``block`` filled in for ``subject``'s program, and
        its width checked against ``k``: one line, before any work, if either does not fit."""
        steps = subject.program.steps
        step = resolve_step(subject, self.step, self.block)
        width = self.expansion * subject.d_model
        if self.k > width:
            raise NeuroMagicsError(f"--k {self.k} is more than the {width} features: pick k below the width.")
        return SaeTrainingConfig(**{**self.to_dict(), "step": step, "block": int(steps[step])})

    # -- JSON ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SaeTrainingConfig:
        """The config of ``data`` (as ``to_dict`` wrote it); an unknown key is refused in one line."""
        unknown = sorted(set(data) - set(cls.names()))
        if unknown:
            raise NeuroMagicsError(f"Unknown SAE training option(s) {', '.join(map(repr, unknown))}: use "
                                   f"{', '.join(cls.names())}.")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SaeTrainingConfig:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise NeuroMagicsError(f"An SAE training config must be a JSON object: {error}.") from None
        if not isinstance(data, dict):
            raise NeuroMagicsError("An SAE training config must be a JSON object of its options.")
        return cls.from_dict(data)

    # -- what the magic shows -----------------------------------------------------------------------

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def flag(cls, name: str) -> str:
        """The ``%sae train`` option of field ``name`` (without the dashes)."""
        return {f.name: f.metadata["flag"] or f.name for f in fields(cls)}[name]

    @classmethod
    def help(cls, name: str) -> str:
        """The field's help, with its default."""
        spec = {f.name: f for f in fields(cls)}[name]
        default = spec.default if spec.default is not MISSING else None
        return spec.metadata["help"] + ("" if default is None else f" (default {default})")

    @classmethod
    def default(cls, name: str) -> Any:
        return {f.name: f.default for f in fields(cls)}[name]


def resolve_step(subject: Subject, step: Any, block: Any) -> int:
    """The program step an SAE reads from ``step`` and/or ``block`` (an original block that runs
    at exactly one step); one line saying what to do when they do not fit the program."""
    steps = subject.program.steps
    if step is not None and (not _whole(step) or not 0 <= step < len(steps)):
        raise NeuroMagicsError(f"--step {step!r} is out of range: this program has steps 0-{len(steps) - 1}.")
    if block is None:
        return int(step)
    if not _whole(block) or not 0 <= block < subject.n_layers:
        raise NeuroMagicsError(f"--block {block!r} is out of range: {subject.name} has blocks 0-{subject.n_layers - 1}.")
    at = [position for position, original in enumerate(steps) if original == block]
    if step is not None:
        if step not in at:
            raise NeuroMagicsError(f"Program step {step} runs block {steps[step]}, not block {block}: give one of "
                                   "--step or --block.")
        return int(step)
    if len(at) != 1:
        where = "does not run" if not at else f"runs at steps {', '.join(map(str, at))}"
        raise NeuroMagicsError(f"Block {block} {where} in this program: say which with --step N.")
    return at[0]


def _whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
