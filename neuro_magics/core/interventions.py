"""Interventions: named sets of hooks on the model's ORIGINAL modules, kept on the Subject.

A layer program's extra occurrences of a block share its modules' hook dicts, so an
intervention on block ``b`` acts at every occurrence of ``b``, in HF's forward, in
``generate`` and in the runner alike: interventions compose with layer programs.

An ``Intervention`` is a value: build it (e.g. ``nm.ablate(..., install=False)``), print it,
try it with ``with intervention.applied(subject):``, then ``install`` it. The subject keeps
the active ones in order (``subject.interventions``) until ``reset_interventions``. Each
carries a JSON-serialisable ``spec`` (its kind, what it prints as, and the builder's
arguments, computed vectors included) that ``rebuild`` turns back into the same hooks on
any subject of the same model: that is what every result's metadata records and what
``Result.replay`` re-applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import NeuroMagicsError

if TYPE_CHECKING:
    from .subject import Subject

#: The intervention kinds of LoRA adapters (hooked, and merged into the weights): what
#: ``%diff_models A no-adapter`` removes and the fine-tune magics list.
ADAPTER_KINDS = ("lora", "lora_merged")


def main_output(output: Any) -> torch.Tensor:
    """A module's main output tensor: HF blocks and attention modules return a tuple in some
    families and transformers versions, a bare tensor in others."""
    return output[0] if isinstance(output, tuple) else output


def replacing_output(edit: Callable[[torch.Tensor], torch.Tensor | None]) -> Callable:
    """A forward hook that replaces a module's main output by ``edit(tensor)``, in the form the
    module returned it (tuple or tensor); ``edit`` returning None or the same tensor leaves it."""

    def hook(module, args, output):
        tensor = main_output(output)
        new = edit(tensor)
        if new is None or new is tensor:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def main_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """A block's hidden-state input, passed by position or as ``hidden_states=``."""
    return args[0] if args else kwargs["hidden_states"]


def replacing_input(edit: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """A forward pre-hook (``with_kwargs=True``) that replaces a block's hidden-state input by
    ``edit(tensor)``, wherever the caller passed it."""

    def hook(module, args, kwargs):
        if args:
            return (edit(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": edit(kwargs["hidden_states"])}

    return hook


@dataclass(frozen=True)
class Hook:
    """One hook to register: ``kind`` is "pre" (input), "pre_kwargs" (input, hidden maybe by
    keyword) or "forward" (output)."""

    module: nn.Module
    kind: str
    function: Callable


@dataclass(frozen=True)
class WeightChange:
    """New values for some parameters (a knowledge edit, a pruning mask), written in place by
    ``apply`` from their current values. The subject keeps the values it replaced aside and
    copies them back on removal, so undo is bit-identical."""

    parameters: Sequence[nn.Parameter]
    apply: Callable[[], None]  # called under torch.no_grad() with the subject's lock held


@dataclass(eq=False)
class Intervention:
    """A named set of hooks (and/or a weight change) that can be installed and removed exactly,
    and rebuilt from ``spec``."""

    kind: str  # "ablate", "steer", ...: the name of its rebuilder
    description: str
    arguments: dict[str, Any] = field(repr=False)  # JSON-serialisable; enough to rebuild it exactly
    hooks: Sequence[Hook] = field(repr=False)
    vector: torch.Tensor | None = field(default=None, repr=False)  # the steering vector, if any
    weights: WeightChange | None = field(default=None, repr=False)  # parameters it rewrites, if any

    @property
    def spec(self) -> dict[str, Any]:
        """What results record: ``rebuild(subject, spec)`` gives the same hooks again."""
        return {"kind": self.kind, "description": self.description, "arguments": self.arguments}

    def install(self, subject: Subject) -> Intervention:
        """Keep it active on ``subject`` until reset."""
        subject.add_intervention(self)
        return self

    @contextlib.contextmanager
    def applied(self, subject: Subject) -> Iterator[Intervention]:
        """Active (and listed on the subject) only inside the block; removed also after an
        exception or interrupt. Holds the subject's lock throughout."""
        with subject.lock:
            subject.add_intervention(self)
            try:
                yield self
            finally:
                subject.remove_intervention(self)

    def __repr__(self) -> str:
        return f"{self.kind}: {self.description}"


def register(hooks: Sequence[Hook]) -> list:
    """Register all hooks or none: a failure half-way removes the ones already registered."""
    handles = []
    try:
        for hook in hooks:
            if hook.kind == "forward":
                handles.append(hook.module.register_forward_hook(hook.function))
            else:
                handles.append(hook.module.register_forward_pre_hook(hook.function, with_kwargs=hook.kind == "pre_kwargs"))
    except BaseException:
        for handle in handles:
            handle.remove()
        raise
    return handles


def active_interventions(subject: Subject, kind: str | None = None) -> list[Intervention]:
    """The installed interventions, oldest first (``kind``: "ablate", "steer" or all)."""
    return [i for i in subject.interventions if kind is None or i.kind == kind]


def reset_interventions(subject: Subject, kind: str | None = None) -> int:
    """Remove interventions (of ``kind``, or all), installed and parked alike; returns how many
    were removed."""
    return subject.remove_interventions(kind)


# -- rebuilding from a spec -------------------------------------------------------------------------

#: kind -> function(subject, arguments, description) -> Intervention (not installed).
#: Analysis modules register theirs on import (``@rebuilder(kind)``).
_REBUILDERS: dict[str, Callable[..., Intervention]] = {}


def rebuilder(kind: str) -> Callable:
    """Register the function that turns a recorded spec of ``kind`` back into an Intervention."""

    def register_rebuilder(function: Callable[..., Intervention]) -> Callable[..., Intervention]:
        _REBUILDERS[kind] = function
        return function

    return register_rebuilder


def rebuild(subject: Subject, spec: dict[str, Any]) -> Intervention:
    """The intervention a result's metadata recorded, built (not installed) on ``subject``."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in _REBUILDERS:
        from .results import load_all_kinds  # analysis modules register their rebuilders on import

        load_all_kinds()
    if kind not in _REBUILDERS:
        raise NeuroMagicsError(f"Cannot rebuild an intervention of kind {kind!r}; upgrade neuro_magics.")
    return _REBUILDERS[kind](subject, spec["arguments"], spec["description"])
