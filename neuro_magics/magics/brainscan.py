"""%%brainscan: the RYS layer-duplication sweep as a clickable heatmap."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.brain_scan import BrainScanResult, brainscan
from .session import SessionMagics, check_output_name, integer, one_line_errors, parse_arguments, worker_options


@magics_class
class BrainScanMagics(SessionMagics):
    @magic_arguments()
    @argument("--probe", default="math",
              help="math, facts, text, or a .jsonl file of {\"prompt\", \"answer\", \"scorer\"} lines. "
                   "Items in the cell body (JSON lines, or passages for text) replace the built-in ones.")
    @argument("--score", default="logprob", choices=("logprob", "generate"),
              help="logprob: teacher-forced answer log-probability (fast); generate: greedy answer, graded.")
    @argument("--max-new-tokens", type=integer, default=64, help="Longest greedy answer with --score generate.")
    @argument("--blocks", default=None,
              help="Sweep only configs inside original blocks I0:J0 (I0 <= i < j <= J0); a-b is inclusive.")
    @argument("--layers", default=None,
              help="Old spelling of --blocks, only under the identity program (where a block is its step).")
    @argument("--times", type=integer, default=1, help="Extra passes of the duplicated block (1: it runs twice).")
    @argument("--limit", type=integer, default=None, help="Use only the first N probe items.")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in variable NAME.")
    @argument("--save", default=None, metavar="PATH", help="Write the result to PATH (.npz) as rows finish.")
    @argument("--resume", default=None, metavar="PATH",
              help="Continue the scan saved at PATH (same model, probe and score); keeps saving there.")
    @argument("--overwrite", action="store_true", help="Let --save replace an existing file.")
    @worker_options("the start rows")
    @line_cell_magic
    @one_line_errors
    def brainscan(self, line: str, cell: str | None = None) -> BrainScanResult:
        """Duplicate every block i..j-1 (run 0..j-1, then i..L-1), score each config on a
        probe set, and show score minus baseline as a clickable (L+1) x (L+1) heatmap.
        Click a cell to apply that program and see the before/after diff. Ctrl-C keeps the
        finished cells; Python: nm.brainscan(subject, probe=..., score=...)."""
        args = parse_arguments(self.brainscan, line)
        check_output_name(self.shell, args.output)
        if cell is not None and not cell.strip():
            raise UsageError("The cell is empty: write probe items below %%brainscan (JSON lines, or passages for "
                             "--probe text), or run %brainscan on one line for the built-in items.")
        subject = self.session.require_subject()
        result = brainscan(
            subject, probe=args.probe, score=args.score, items=cell, limit=args.limit,
            blocks=args.blocks, layers=args.layers, times=args.times, max_new_tokens=args.max_new_tokens,
            save=args.save, resume=args.resume, overwrite=args.overwrite,
            workers=args.workers, ray_address=args.ray_address,
        )
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        if result.interrupted:
            where = args.save or args.resume
            tail = f"; continue with --resume {where}" if where else "; add --save PATH next time to resume"
            print(f"Interrupted: {result.n_finished} of {result.n_configs} configs finished and kept{tail}.")
        return result


MAGICS = (BrainScanMagics,)
