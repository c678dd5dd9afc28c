"""%duplicate_layers, %drop_layers, %reset_layers: layer surgery.

Thin shells over ``nm.duplicate_layers`` / ``nm.drop_layers`` / ``nm.set_program`` /
``nm.save_materialized`` / ``nm.mergekit_yaml``.
Everything is validated before the model changes, so a bad line leaves it exactly as it was.
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, argument_group, magic_arguments

from ..analyses import surgery
from ..analyses.diffing import DEFAULT_NEW_TOKENS
from ..core.paths import check_file_target, check_folder_target
from ..core.programs import LayerProgram
from ..core.subject import Subject
from .session import SessionMagics, integer, one_line_errors, parse_arguments


def _diff_arguments(magic):
    """Options shared by every change that shows a before/after diff."""
    for decorator in reversed((
        argument_group("diff"),
        argument("--prompt", action="append", default=None, metavar="TEXT",
                 help="Prompt to diff on (repeat for several; quote text with spaces). Default: built-in varied prompts."),
        argument("--prompts", default=None, metavar="VAR",
                 help="Name of a Python variable holding a prompt or a list of prompts to diff on."),
        argument("--max-new-tokens", type=integer, default=DEFAULT_NEW_TOKENS, metavar="N",
                 help=f"Greedy tokens generated per prompt and side (default {DEFAULT_NEW_TOKENS})."),
        argument("--no-diff", action="store_true", help="Apply the change without computing the diff."),
    )):
        magic = decorator(magic)
    return magic


def _export_arguments(magic):
    for decorator in reversed((
        argument_group("export"),
        argument("--save", default=None, metavar="DIR",
                 help="Also write the resulting program as a plain HF model folder (loads with "
                      "AutoModelForCausalLM.from_pretrained(DIR))."),
        argument("--mergekit", default=None, metavar="FILE",
                 help="Also write the equivalent mergekit passthrough YAML to FILE."),
        argument("--overwrite", action="store_true",
                 help="Let --save replace a non-empty folder and --mergekit an existing file."),
    )):
        magic = decorator(magic)
    return magic


@magics_class
class LayerMagics(SessionMagics):
    # -- surgery ------------------------------------------------------------------------

    @magic_arguments()
    @argument("block", nargs="?", default=None,
              help="I:J, half-open positions of the current program (I-J: inclusive). Runs 0..J-1, then I..J-1 "
                   "again, then the rest; on an unmodified model positions are block indices.")
    @argument("--times", type=integer, default=None, metavar="N",
              help="Extra repetitions of the block (default 1: the block runs twice in a row).")
    @argument("--program", default=None, metavar="SPEC",
              help="Replace the whole program by original block ranges, e.g. \"0-15,8-29\" "
                   "(a-b inclusive, a:b half-open, a single block).")
    @argument("--show", action="store_true",
              help="Print the current program and which blocks each run of positions calls (m.program has it in Python).")
    @_diff_arguments
    @_export_arguments
    @line_magic
    @one_line_errors
    def duplicate_layers(self, line: str):
        """Duplicate a block of layers (RYS) or set any layer program, zero-copy; returns a before/after diff.

        Examples: ``%duplicate_layers 10:16``, ``%duplicate_layers 10:16 --times 2``,
        ``%duplicate_layers --program "0-15,8-29"``, ``%duplicate_layers --show``.
        """
        args = parse_arguments(self.duplicate_layers, line)
        subject = self.session.require_subject()
        if args.block is not None and args.program is not None:
            raise UsageError("Give either I:J or --program, not both.")
        if args.times is not None and args.block is None:
            raise UsageError("--times goes with a block I:J, e.g. %duplicate_layers 10:16 --times 2.")
        if args.block is None and args.program is None:
            if not (args.show or args.save is not None or args.mergekit is not None):
                raise UsageError(
                    "Give a block I:J (e.g. %duplicate_layers 10:16), --program SPEC, or --show."
                )
            self._check_export_targets(args)
            print(f"{_describe(subject.program)}.")
            self._export(subject, subject.program, args)
            return None
        if args.show:
            raise UsageError("--show prints the current program; run it on its own, before or after a change.")
        if args.block is not None:
            start, end = surgery.parse_span(args.block, len(subject.program))
            new = surgery.duplicated(subject.program, start, end, 1 if args.times is None else args.times)
        else:
            new = surgery.as_program(subject, args.program)
        return self._apply(subject, new, args)

    @magic_arguments()
    @argument("positions", help="Positions of the current program to remove, e.g. 3,5,20:24 (a:b half-open, a-b inclusive).")
    @_diff_arguments
    @_export_arguments
    @line_magic
    @one_line_errors
    def drop_layers(self, line: str):
        """Remove blocks from the current program (pruning), zero-copy; returns a before/after diff."""
        args = parse_arguments(self.drop_layers, line)
        subject = self.session.require_subject()
        positions = surgery.parse_positions(args.positions, len(subject.program))
        return self._apply(subject, surgery.dropped(subject.program, positions), args)

    @magic_arguments()
    @argument("--diff", action="store_true", help="Also show the before/after diff of the reset.")
    @_diff_arguments
    @line_magic
    @one_line_errors
    def reset_layers(self, line: str):
        """Restore the original layer program (bit-identical to the freshly loaded model)."""
        args = parse_arguments(self.reset_layers, line)
        subject = self.session.require_subject()
        if subject.program.is_identity:
            print(f"Already the original program ({_describe(subject.program)}).")
            return None
        args.no_diff = args.no_diff or not args.diff
        args.save = args.mergekit = None
        args.overwrite = False
        return self._apply(subject, LayerProgram.identity(subject.n_layers), args)

    def _apply(self, subject: Subject, new: LayerProgram, args):
        """Validate everything, then diff and apply ``new``, then export it."""
        prompts = self._prompts(args)
        if args.max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens must be at least 1 (got {args.max_new_tokens}).")
        self._check_export_targets(args)
        if getattr(args, "save", None) or getattr(args, "mergekit", None):
            surgery.check_exportable(subject, weights_saved=not getattr(args, "mergekit", None))  # before the program changes
        before = subject.program
        result = surgery.set_program(subject, new, diff=not args.no_diff, prompts=prompts,
                                     max_new_tokens=args.max_new_tokens)
        try:
            self._export(subject, subject.program, args)
        except BaseException:
            subject.set_program(before)
            raise
        print(f"{_describe(subject.program)}.")
        return None if args.no_diff else result

    def _prompts(self, args) -> list[str] | None:
        prompts = list(args.prompt or [])
        if args.prompts is not None:
            if args.prompts not in self.shell.user_ns:
                raise UsageError(f"--prompts {args.prompts}: no variable of that name; assign a list of prompts to it first.")
            value = self.shell.user_ns[args.prompts]
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p for p in value) or not value:
                raise UsageError(f"--prompts {args.prompts}: it must hold a non-empty string or list of strings.")
            prompts.extend(value)
        return prompts or None

    @staticmethod
    def _check_export_targets(args) -> None:
        """Both targets are checked before the model changes (a bad one costs nothing)."""
        if args.save is not None:
            check_folder_target(args.save, "--save", overwrite=args.overwrite)
        if args.mergekit is not None:
            check_file_target(args.mergekit, "--mergekit", overwrite=args.overwrite)

    def _export(self, subject: Subject, program: LayerProgram, args) -> None:
        if args.save is not None:
            path = surgery.save_materialized(subject, args.save, program, overwrite=args.overwrite)
            print(f"Saved the materialized model ({len(program)} blocks) to {path}.")
        if args.mergekit is not None:
            surgery.mergekit_yaml(subject, program, path=args.mergekit, overwrite=args.overwrite)
            print(f"Wrote the mergekit passthrough config to {args.mergekit}.")


def _describe(program: LayerProgram) -> str:
    """The program, and which blocks each run of positions calls (positions are what I:J index);
    no final full stop, so it reads inside a sentence too."""
    if program.is_identity:
        return f"Layer program: identity, blocks 0-{program.n_layers - 1} ({program.n_layers} steps)"
    parts, position = [], 0
    for first, last in surgery.contiguous_runs(program.steps):
        count = last - first + 1
        where = str(position) if count == 1 else f"{position}-{position + count - 1}"
        what = str(first) if count == 1 else f"{first}-{last}"
        parts.append(f"positions {where} -> blocks {what}")
        position += count
    return (f"Layer program: {program} ({len(program)} steps of {program.n_layers} layers; "
            f"{'; '.join(parts)})")


MAGICS = (LayerMagics,)
