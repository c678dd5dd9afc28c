"""Layer programs: which decoder blocks a forward pass runs, in which order.

The identity program of an L-layer model is ``0..L-1``. Duplicating, dropping,
reordering and Goliath-style stacking are just other lists. A program is applied
zero-copy: the model's block list is swapped for one whose entries are the original
blocks, or thin *views* of them that share every parameter but carry their own
``layer_idx`` so each occurrence gets its own KV-cache slot.

Range syntax, used everywhere in neuro_magics: ``a-b`` is inclusive of both ends
(``0-3`` is blocks 0, 1, 2, 3); ``a:b`` is half-open like a Python slice (``0:3`` is
blocks 0, 1, 2); a bare ``a`` is one block.
"""

from __future__ import annotations

import copy
import functools
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from .errors import ProgramError

#: Longest program we accept, as a multiple of the model's depth: enough for deep
#: stacks, small enough that a typo like ``--times 1000`` fails fast instead of OOM.
MAX_PROGRAM_FACTOR = 8

_RANGE = re.compile(r"^\s*([0-9]+)\s*(?:([-:])\s*([0-9]+))?\s*$")


@dataclass(frozen=True)
class LayerProgram:
    """An immutable list of block indices into the model's original blocks."""

    steps: tuple[int, ...]
    n_layers: int

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in self.steps)
        object.__setattr__(self, "steps", steps)
        if not steps:
            raise ProgramError("A layer program needs at least one block; use %reset_layers to restore.")
        bad = [s for s in steps if not 0 <= s < self.n_layers]
        if bad:
            raise ProgramError(
                f"Block {bad[0]} is out of range: this model has blocks 0-{self.n_layers - 1}."
            )
        limit = MAX_PROGRAM_FACTOR * self.n_layers
        if len(steps) > limit:
            raise ProgramError(
                f"A program of {len(steps)} blocks is longer than the limit of {limit} "
                f"({MAX_PROGRAM_FACTOR} x {self.n_layers} layers)."
            )

    @classmethod
    def identity(cls, n_layers: int) -> LayerProgram:
        return cls(tuple(range(n_layers)), n_layers)

    @classmethod
    def duplicate(cls, n_layers: int, start: int, end: int, times: int = 1) -> LayerProgram:
        """RYS duplication: run ``0..end-1``, then ``start..end-1`` again ``times`` more
        times, then the rest. ``end`` is exclusive."""
        if times < 1:
            raise ProgramError(f"--times must be at least 1 (got {times}).")
        if not 0 <= start < end <= n_layers:
            raise ProgramError(
                f"Need 0 <= I < J <= {n_layers} for a duplicated block I:J (got {start}:{end})."
            )
        steps = list(range(end)) + list(range(start, end)) * (times - 1) + list(range(start, n_layers))
        return cls(tuple(steps), n_layers)

    @classmethod
    def parse(cls, spec: str, n_layers: int) -> LayerProgram:
        """Parse comma-separated ranges, e.g. ``"0-16,8-24,17-29"`` or ``"0:10,5:30"``."""
        return cls(tuple(parse_ranges(spec, n_layers)), n_layers)

    @property
    def is_identity(self) -> bool:
        return self.steps == tuple(range(self.n_layers))

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, index):
        return self.steps[index]

    def __str__(self) -> str:
        """Compact inclusive ranges: ``0-12,8-29``."""
        parts: list[str] = []
        run_start = prev = self.steps[0]
        for step in self.steps[1:] + (None,):
            if step is not None and step == prev + 1:
                prev = step
                continue
            parts.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
            if step is not None:
                run_start = prev = step
        return ",".join(parts)

    def __repr__(self) -> str:
        kind = "identity" if self.is_identity else f"{len(self)} steps"
        return f"LayerProgram({self}; {kind}, of {self.n_layers} layers)"


def parse_ranges(spec: str, n_layers: int, *, unit: str = "block", owner: str = "this model") -> list[int]:
    """Expand a range spec (see module docstring) into indices below ``n_layers``, in order.

    ``unit`` and ``owner`` word the messages (e.g. "position", "the current program")."""
    if not spec or not spec.strip():
        raise ProgramError(f"Empty {unit} list: write ranges like 0-5,3-29 (inclusive) or 0:6 (half-open).")
    steps: list[int] = []
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ProgramError(
                f"Cannot read {part.strip()!r} in {spec!r}: use a, a-b (inclusive) or a:b (half-open), counted from 0"
                + (" (there are no negative indices)." if part.strip().startswith("-") else ".")
            )
        first, sep, last = match.groups()
        lo = int(first)
        if sep is None:
            hi = lo + 1
        elif sep == "-":
            hi = int(last) + 1
        else:
            hi = int(last)
        if hi <= lo:
            raise ProgramError(f"Range {part.strip()!r} is empty or backwards; ranges go low to high.")
        if hi > n_layers and sep is None:
            raise ProgramError(
                f"{unit.capitalize()} {lo} is out of range: {owner} has {unit}s 0-{n_layers - 1}."
            )
        if hi > n_layers:
            raise ProgramError(
                f"Range {part.strip()!r} reaches {unit} {hi - 1}, but {owner} has {unit}s 0-{n_layers - 1}."
            )
        steps.extend(range(lo, hi))
    return steps


def occurrence_view(module: nn.Module, layer_idx: int) -> nn.Module:
    """A copy of ``module`` that shares every parameter, buffer and hook with it but
    reports ``layer_idx`` wherever the original stores one (its KV-cache slot).

    Only the modules on the path to an attribute ``layer_idx`` are copied (shallowly);
    all other children are the original objects.
    """
    if not _holds_layer_idx(module):
        return module
    view = copy.copy(module)
    view.__dict__["_modules"] = dict(module._modules)
    _rebind_instance_forwards(module, view)
    if isinstance(getattr(module, "layer_idx", None), int):
        view.__dict__["layer_idx"] = layer_idx
    for name, child in module._modules.items():
        if child is not None:
            view._modules[name] = occurrence_view(child, layer_idx)
    return view


def _rebind_instance_forwards(module: nn.Module, view: nn.Module) -> None:
    """accelerate (``device_map="auto"``) replaces ``forward`` per instance with a partial
    bound to the module; a view must call *itself*, or it would run the original's
    attention with the original's KV slot."""
    for name in ("forward", "_old_forward"):
        bound = module.__dict__.get(name)
        if isinstance(bound, functools.partial) and bound.args[:1] == (module,):
            rebound = functools.partial(bound.func, view, *bound.args[1:], **bound.keywords)
            view.__dict__[name] = functools.update_wrapper(rebound, bound)
        elif isinstance(bound, types.MethodType) and bound.__self__ is module:
            view.__dict__[name] = types.MethodType(bound.__func__, view)


def _holds_layer_idx(module: nn.Module) -> bool:
    return any(isinstance(getattr(m, "layer_idx", None), int) for m in module.modules())


def block_list_for(original: Sequence[nn.Module], steps: Iterable[int]) -> nn.ModuleList:
    """The block list that runs ``steps``: position k holds block ``steps[k]`` with
    ``layer_idx == k``; an original block is reused where it already sits at k."""
    blocks = []
    for position, block_index in enumerate(steps):
        block = original[block_index]
        blocks.append(block if position == block_index else occurrence_view(block, position))
    return nn.ModuleList(blocks)


def dropped(program: LayerProgram, positions: Sequence[int]) -> LayerProgram:
    """``program`` without the steps at the given positions (what ``%drop_layers`` and ShortGPT
    pruning apply)."""
    gone = set(positions)
    bad = sorted(p for p in gone if not 0 <= p < len(program))
    if bad:
        raise ProgramError(f"Position {bad[0]} is out of range: the current program has positions 0-{len(program) - 1}.")
    if len(gone) == len(program):
        raise ProgramError("That would drop every block; keep at least one (or use %reset_layers).")
    return LayerProgram(tuple(s for k, s in enumerate(program.steps) if k not in gone), program.n_layers)


def explicit_layer_word(program: LayerProgram, old_value, new_value, *, old: str, new: str):
    """What the user gave under the explicit word ``new`` (a block or a step option), or under
    the old word ``old`` ("layer"). A *block* is an original layer, a *step* a position in the
    program: the old word names both only under the identity program, so elsewhere it is
    refused in one line rather than silently read as one of them."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise ProgramError(f"Give {new} or {old}, not both: {old} is the old spelling of {new}.")
    if not program.is_identity:
        raise ProgramError(f"{old} is ambiguous under the program {program}, where a block (an original layer) and "
                           f"a step (a position in the program) differ: say {new}.")
    return old_value
