"""%checkup: a health report of the loaded model's internals (thin shell over nm.checkup)."""

from __future__ import annotations

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.checkup import CheckupConfig, CheckupResult, checkup
from ..core.corpus import load_corpus
from ..core.errors import NeuroMagicsError
from .config_options import config_arguments, given_config
from .session import SessionMagics, check_output_name, one_line_errors, parse_arguments, worker_options


@magics_class
class CheckupMagics(SessionMagics):
    @magic_arguments()
    @argument("--corpus", default="builtin",
              help="builtin (the five-genre corpus), builtin:math,code, or a .txt / .jsonl file of texts.")
    @config_arguments(CheckupConfig)
    @argument("--html", default=None, metavar="PATH", help="Also write the report as one offline HTML file.")
    @argument("--overwrite", action="store_true", help="Let --html replace an existing file.")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in variable NAME.")
    @worker_options("the corpus batches")
    @line_magic
    @one_line_errors
    def checkup(self, line: str) -> CheckupResult:
        """Massive activations, attention sinks, dead or redundant heads, dead neurons, residual
        growth, Block Influence, where the logit lens settles and weight spectra, from a few
        batched passes over a small corpus; each finding opens onto its view and its action
        (click: apply it and see the diff). Python: nm.checkup(subject, corpus)."""
        args = parse_arguments(self.checkup, line)
        config = given_config(CheckupConfig, args)
        check_output_name(self.shell, args.output)
        html = None
        if args.html is not None:
            from ..widgets.standalone import html_target

            html = html_target(args.html, overwrite=args.overwrite)
        elif args.overwrite:
            raise NeuroMagicsError("--overwrite goes with --html PATH.")
        load_corpus(args.corpus)  # a missing or empty file is refused before any work
        subject = self.session.require_subject()
        result = checkup(subject, args.corpus, config=config, workers=args.workers, ray_address=args.ray_address)
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        if html is not None:
            print(f"Wrote {result.to_html(html, overwrite=args.overwrite)}")
        return result


MAGICS = (CheckupMagics,)
