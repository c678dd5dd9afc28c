"""%%scan: the fMRI cell. The cell body is the prompt; the result's repr is its widget."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.scanning import DEFAULT_SITES, SITE_GROUPS, ScanBatch, ScanResult, scan
from .session import SessionMagics, check_output_name, integer, one_line_errors, parse_arguments


@magics_class
class ScanMagics(SessionMagics):
    @magic_arguments()
    @argument("--sites", default=",".join(DEFAULT_SITES),
              help=f"What to capture, comma-separated: {', '.join(SITE_GROUPS)} (default: %(default)s).")
    @argument("--steps", default=None,
              help="Program steps (positions in the layer program, not blocks) to keep: a:b half-open or a-b "
                   "inclusive, e.g. 0:30 or 10-20 (default: all).")
    @argument("--layers", default=None,
              help="Old spelling of --steps, only under the identity program (where a step is its block).")
    @argument("--lens", action="store_true",
              help="Logit lens per step and token: top-k tokens, entropy, probability and rank of the target.")
    @argument("--attention", action="store_true",
              help="Attention patterns and head scores (eager attention for this cell only).")
    @argument("--top-k", type=integer, default=None, help="Lens tokens kept per cell (default 5; implies --lens).")
    @argument("--target", default=None,
              help='One token whose lens probability and rank to follow, e.g. --target " Paris" (implies --lens; '
                   "default: the model's own final prediction at each position).")
    @argument("--each-line", action="store_true", help="Scan each non-empty line of the cell as its own prompt, batched.")
    @argument("-o", "--output", default=None, help="Also store the result in this variable.")
    @line_cell_magic
    @one_line_errors
    def scan(self, line: str, cell: str | None = None) -> ScanResult | ScanBatch:
        """Scan the prompt in the cell body: what every layer does to every token.

        The body is taken literally (one trailing newline dropped); ``{var}`` in the line
        is expanded by IPython. The result's repr is the layer x token heatmap (plus the
        attention explorer with --attention); in Python: ``nm.scan(subject, prompt, ...)``.
        """
        args = parse_arguments(self.scan, line)
        if cell is None:
            raise UsageError("%%scan takes the prompt from the cell body: write %%scan [options] on the first line "
                             "and the prompt below it.")
        check_output_name(self.shell, args.output)
        text = cell[:-1] if cell.endswith("\n") else cell
        if not text.strip():
            raise UsageError("The cell is empty: write the prompt below %%scan.")
        prompt = [ln for ln in text.splitlines() if ln.strip()] if args.each_line else text
        subject = self.session.require_subject()
        result = scan(
            subject,
            prompt,
            sites=args.sites,
            steps=args.steps,
            layers=args.layers,
            lens=args.lens or args.top_k is not None,
            attention=args.attention,
            top_k=5 if args.top_k is None else args.top_k,
            target=args.target,
        )
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result


MAGICS = (ScanMagics,)
