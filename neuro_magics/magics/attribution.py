"""%attribute: a thin shell over nm.attribute (input attribution + direct logit attribution)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.attribution import BASELINES, METHODS, AttributionResult, attribute
from .session import SessionMagics, check_output_name, integer, one_line_errors, parse_arguments


@magics_class
class AttributionMagics(SessionMagics):
    @magic_arguments()
    @argument("prompt", nargs="*", help="The prompt on the line (quote it if it holds quotes); with %%attribute, the cell.")
    @argument("--target", default=None, help='The next token to explain, e.g. --target " Paris" (default: the '
                                             "model's own next token).")
    @argument("--foil", default=None, help='Explain logit(target) - logit(foil) instead of log p(target), e.g. '
                                           '--foil " Rome".')
    @argument("--method", default="all",
              help=f"{', '.join(METHODS)}, several comma-separated, or all (default).")
    @argument("--steps", type=integer, default=32, help="Integrated-gradient steps, run as one batch (default 32).")
    @argument("--generate", type=integer, default=0, metavar="N",
              help="Let the model write N tokens and explain each: a source x generated-token matrix.")
    @argument("--baseline", default="pad", help=f"Where integrated gradients start and what occlusion puts in: "
                                                f"{', '.join(BASELINES)} (default pad).")
    @argument("--move-first", action="store_true",
              help="Integrated gradients move the first token too (it is kept by default: it is the attention sink).")
    @argument("--spans", default=None, metavar="A:B,...",
              help="Token ranges (end exclusive) that occlusion removes together, e.g. 1:3,5:6 (default: each token).")
    @argument("--no-dla", action="store_true", help="Skip direct logit attribution.")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in variable NAME.")
    @line_cell_magic
    @one_line_errors
    def attribute(self, line: str, cell: str | None = None) -> AttributionResult:
        """Which prompt tokens (saliency, input x gradient, integrated gradients, occlusion,
        rollout) and which heads and MLPs (direct logit attribution) made the model say its
        next token. ``%%attribute --target " Paris" --foil " Rome"`` with the prompt in the cell,
        or ``%attribute "The Eiffel Tower is in"``. In Python: ``nm.attribute(subject, prompt, ...)``.
        """
        args = parse_arguments(self.attribute, line)
        check_output_name(self.shell, args.output)
        if args.steps < 1:
            raise UsageError(f"--steps must be at least 1 (got {args.steps}).")
        if args.generate < 0:
            raise UsageError(f"--generate must be 0 or more tokens (got {args.generate}).")
        if cell is not None and args.prompt:
            raise UsageError("Give the prompt either on the %%attribute line or in the cell, not both.")
        prompt = (cell[:-1] if cell.endswith("\n") else cell) if cell is not None else " ".join(args.prompt)
        if not prompt.strip():
            raise UsageError("No prompt: write it after the options, or in the cell below %%attribute.")
        methods = "all" if args.method == "all" else [m.strip() for m in args.method.split(",") if m.strip()]
        spans = None if args.spans is None else _spans(args.spans)
        subject = self.session.require_subject()
        result = attribute(subject, prompt, target=args.target, foil=args.foil, method=methods, steps=args.steps,
                           generate=args.generate, baseline=args.baseline, keep_first=not args.move_first,
                           spans=spans, dla=not args.no_dla)
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result


def _spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for part in text.split(","):
        pieces = part.strip().split(":")
        if len(pieces) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in pieces):
            raise UsageError(f"Cannot read {part.strip()!r} as a span: write START:END token positions, e.g. 1:3.")
        spans.append((int(pieces[0]), int(pieces[1])))
    return spans


MAGICS = (AttributionMagics,)
