"""Layer surgery: duplicate, drop or re-stack decoder blocks without copying a weight.

Composition rule: ``duplicate_layers`` and ``drop_layers`` index *positions of the current
program* (for an unmodified model positions are the block indices), so changes compose
the way they read: after ``drop_layers("3")`` on a 30-layer model, position 3 runs block 4.
``set_program`` takes original block indices and replaces the whole program.

Range syntax (as everywhere in neuro_magics): ``a-b`` inclusive, ``a:b`` half-open, ``a``
one position. RYS duplication ``I:J`` (half-open) runs positions ``0..J-1``, then
``I..J-1`` again ``times`` more times, then ``I..end``.

Every change returns a before/after :class:`~neuro_magics.analyses.diffing.DiffResult` unless
``diff=False`` (then the new program). ``save_materialized`` writes a physically copied HF
model of a program; ``mergekit_yaml`` the equivalent mergekit passthrough config.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from .diffing import DEFAULT_NEW_TOKENS, DiffResult, compare
from ..core.errors import NeuroMagicsError, ProgramError
from ..core.files import replace_file_text, replacing_folder
from ..core.offload import shared_stores
from ..core.paths import check_file_target, check_folder_target
from ..core.programs import MAX_PROGRAM_FACTOR, LayerProgram, dropped, parse_ranges
from ..core.progress import ProgressBar, transformers_bars
from ..core.subject import Subject, with_lock

_SPAN = re.compile(r"^\s*([0-9]+)\s*([-:])\s*([0-9]+)\s*$")


# -- planning: pure functions on programs ---------------------------------------------------


def parse_span(spec: str, length: int) -> tuple[int, int]:
    """``"I:J"`` (half-open) or ``"I-J"`` (inclusive) as a half-open ``(start, end)`` within ``length``."""
    match = _SPAN.match(spec or "")
    if not match:
        negative = " (positions count from 0; there are no negative positions)" if str(spec).strip().startswith("-") else ""
        raise ProgramError(f"Cannot read {spec!r}: give a block of positions as I:J (half-open) or I-J (inclusive)"
                           f"{negative}.")
    start, sep, last = int(match[1]), match[2], int(match[3])
    end = last + 1 if sep == "-" else last
    _check_span(start, end, length)
    return start, end


def _check_span(start: int, end: int, length: int) -> None:
    if not 0 <= start < end <= length:
        raise ProgramError(
            f"Need 0 <= I < J <= {length} for the block I:J (half-open) of the current {length}-step program "
            f"(got {start}:{end})."
        )


def parse_positions(spec: str, length: int) -> list[int]:
    """Positions like ``"3,5,20:24"`` (``a-b`` inclusive, ``a:b`` half-open) within ``length``, sorted, unique."""
    return sorted(set(parse_ranges(spec, length, unit="position", owner="the current program")))


def duplicated(program: LayerProgram, start: int, end: int, times: int = 1) -> LayerProgram:
    """``program`` with its positions ``start..end-1`` run ``times`` more times in a row:
    positions ``0..end-1``, the block ``times - 1`` more times, then ``start..`` (RYS)."""
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ProgramError(f"--times must be a whole number of at least 1 (got {times}).")
    _check_span(start, end, len(program))
    limit = MAX_PROGRAM_FACTOR * program.n_layers
    if len(program) + times * (end - start) > limit:
        raise ProgramError(
            f"Repeating {end - start} blocks {times} more times gives {len(program) + times * (end - start)} steps, "
            f"over the limit of {limit}; lower --times or the block size."
        )
    steps = program.steps
    return LayerProgram(steps[:end] + steps[start:end] * (times - 1) + steps[start:], program.n_layers)


def as_program(subject: Subject, program: LayerProgram | Sequence[int] | str) -> LayerProgram:
    """A LayerProgram from a program, a list of block indices or a spec like ``"0-15,8-29"``."""
    if isinstance(program, LayerProgram):
        if program.n_layers != subject.n_layers:
            raise ProgramError(
                f"That program was made for a {program.n_layers}-layer model; this one has {subject.n_layers}."
            )
        return program
    if isinstance(program, str):
        return LayerProgram.parse(program, subject.n_layers)
    return LayerProgram(tuple(program), subject.n_layers)


# -- applying: every change can show its diff ------------------------------------------------


@with_lock
def set_program(
    subject: Subject,
    program: LayerProgram | Sequence[int] | str,
    *,
    diff: bool = True,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
) -> DiffResult | LayerProgram:
    """Run ``program`` (original block indices, e.g. ``"0-15,8-29"``) from now on, zero-copy.

    With ``diff`` (default) returns the before/after diff on ``prompts`` (default: built-in
    varied prompts), else the new program. Bad input raises before anything changes.
    """
    new = as_program(subject, program)
    result: DiffResult | LayerProgram = new
    if diff:
        result = compare(
            subject, lambda: subject.program_applied(new), prompts, max_new_tokens=max_new_tokens,
            label_before=_label(subject.program), label_after=_label(new),
        )
    subject.set_program(new)
    return result


@with_lock
def duplicate_layers(
    subject: Subject,
    start: int,
    end: int,
    times: int = 1,
    *,
    diff: bool = True,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
) -> DiffResult | LayerProgram:
    """RYS duplication of the current program's positions ``start..end-1`` (``end`` exclusive):
    run ``0..end-1``, then ``start..end-1`` again ``times`` more times, then ``start..``.

    On an unmodified model this is ``LayerProgram.duplicate(L, start, end, times)``; after
    other changes it composes (positions index the current program)."""
    return set_program(subject, duplicated(subject.program, start, end, times), diff=diff, prompts=prompts,
                       max_new_tokens=max_new_tokens)


@with_lock
def drop_layers(
    subject: Subject,
    positions: str | Sequence[int],
    *,
    diff: bool = True,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
) -> DiffResult | LayerProgram:
    """Remove positions of the current program (pruning), e.g. ``"3,5,20:24"`` or ``[3, 5]``."""
    if isinstance(positions, str):
        positions = parse_positions(positions, len(subject.program))
    return set_program(subject, dropped(subject.program, positions), diff=diff, prompts=prompts,
                       max_new_tokens=max_new_tokens)


def _label(program: LayerProgram) -> str:
    return "original" if program.is_identity else f"program {program}"


# -- exporting ------------------------------------------------------------------------------------


@with_lock
def save_materialized(
    subject: Subject,
    path: str | Path,
    program: LayerProgram | Sequence[int] | str | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``program`` (default: the current one) as a plain HF model folder: the blocks
    deep-copied in program order, ``num_hidden_layers``/``layer_types`` and ``layer_idx`` set to
    match, safetensors + config + tokenizer. ``AutoModelForCausalLM.from_pretrained(path)``
    then gives the same logits as the subject under that program.

    Written to a folder beside ``path`` and swapped in, so an interrupted save leaves the old
    folder whole (and its staging folder, removed by the next save there); the subject is not
    changed. Weight changes (%prune masks, %edit updates) are in
    the weights, so they are saved with them (and listed in ``neuro_magics_program.json``);
    refuses while hook interventions (ablation, steering) are active: the saved model would
    silently leave them out.
    """
    check_exportable(subject, weights_saved=True)
    program = subject.program if program is None else as_program(subject, program)
    target = check_folder_target(path, "--save", overwrite=overwrite)
    try:
        with replacing_folder(target) as staging:
            clone = _materialize(subject, program)
            with transformers_bars():
                clone.save_pretrained(staging)
            del clone
            if subject.tokenizer is not None:
                subject.tokenizer.save_pretrained(staging)
            (staging / "neuro_magics_program.json").write_text(json.dumps({
                "source": subject.name, "program": str(program), "steps": list(program.steps),
                "n_layers": program.n_layers,
                "weight_changes": [i.spec["description"] for i in subject.interventions if i.weights is not None],
            }, indent=1))
    except OSError as error:
        raise NeuroMagicsError(f"--save {str(target)!r}: could not write the model ({error.strerror or error}).") from None
    return target


def check_exportable(subject: Subject, *, weights_saved: bool = False) -> None:
    """A saved model or a mergekit config holds only weights and a layer program: refuse
    while interventions are active, except weight changes where the weights themselves are
    saved (``weights_saved``; a mergekit config reads the original weights)."""
    left_out = [i for i in subject.interventions if i.hooks or not (weights_saved and i.weights is not None)]
    if left_out:
        active = "; ".join(repr(i) for i in left_out)
        raise NeuroMagicsError(
            f"The saved model would leave out the active interventions ({active}): "
            "remove them first (nm.reset_interventions(subject), %ablate --reset, %steer --reset, %prune --reset, "
            "%edit --reset).")


def _materialize(subject: Subject, program: LayerProgram) -> nn.Module:
    """A separate model whose blocks are deep copies in program order. Only the blocks in
    the program are copied (the original block list is swapped out during the copy). Offloaded
    blocks stay offloaded in the copy, sharing accelerate's stores; ``save_pretrained`` loads
    them one at a time through those (transformers does, for a model with ``hf_device_map``)."""
    adapter, model = subject.adapter, subject.model
    with subject.program_applied(LayerProgram.identity(subject.n_layers)):
        adapter.set_block_list(model, nn.ModuleList())
        try:
            clone = copy.deepcopy(model, shared_stores(model))
        finally:
            adapter.set_block_list(model, subject.blocks)
        layer_types = getattr(model.config, "layer_types", None)  # the original ones, per block
        layer_types = None if layer_types is None else list(layer_types)
    blocks = nn.ModuleList()
    with ProgressBar(len(program), "materialize", "block", leave=False) as bar:
        for position, block_index in enumerate(program.steps):
            block = copy.deepcopy(subject.blocks[block_index], shared_stores(subject.blocks[block_index]))
            for module in block.modules():
                if isinstance(getattr(module, "layer_idx", None), int):
                    module.layer_idx = position
            blocks.append(block)
            bar.update()
    adapter.set_block_list(clone, blocks)
    clone.config.num_hidden_layers = len(program)
    if layer_types is not None:
        clone.config.layer_types = [layer_types[b] for b in program.steps]
    return clone


def mergekit_yaml(
    subject: Subject,
    program: LayerProgram | Sequence[int] | str | None = None,
    *,
    model: str | None = None,
    path: str | Path | None = None,
    overwrite: bool = False,
) -> str:
    """The mergekit passthrough config that builds ``program`` (default: the current one):
    one slice per contiguous run, ``layer_range`` half-open as mergekit reads it. ``model``
    defaults to where the subject was loaded from. Written to ``path`` when given (an
    existing file only with ``overwrite=True``)."""
    check_exportable(subject)
    program = subject.program if program is None else as_program(subject, program)
    target = None if path is None else check_file_target(path, "--mergekit", overwrite=overwrite)
    source = model or getattr(subject.model.config, "_name_or_path", None) or subject.name
    lines = [f"# neuro_magics layer program {program} ({len(program)} steps of {program.n_layers} layers)", "slices:"]
    for first, last in contiguous_runs(program.steps):
        lines += [
            "  - sources:",
            f"      - model: {json.dumps(str(source))}",
            f"        layer_range: [{first}, {last + 1}]",
        ]
    lines += ["merge_method: passthrough", f"dtype: {str(subject.dtype).removeprefix('torch.')}", ""]
    text = "\n".join(lines)
    if target is not None:
        try:
            replace_file_text(target, text)
        except OSError as error:
            raise NeuroMagicsError(f"--mergekit {str(target)!r}: {error.strerror or error}.") from None
    return text


def contiguous_runs(steps: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous ascending runs as inclusive ``(first, last)`` pairs."""
    runs: list[tuple[int, int]] = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], step)
        else:
            runs.append((step, step))
    return runs
