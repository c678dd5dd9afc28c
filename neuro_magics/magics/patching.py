"""%patch: a thin shell over nm.patch (activation / attribution patching) and nm.trace (causal tracing)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses.patching import DIRECTIONS, METHODS, METRICS, SITES, patch
from .session import SessionMagics, check_positive, integer, one_line_errors, parse_arguments, worker_options


@magics_class
class PatchingMagics(SessionMagics):
    @magic_arguments()
    @argument("--clean", help="The prompt whose behaviour is restored (the corrupt run's donor when denoising).")
    @argument("--corrupt", help="The same-length prompt that changes the answer.")
    @argument("--answers", nargs="+", default=[], metavar="TOKEN",
              help='Single-token answers, clean first: --answers " Mary" " John" (logprob/prob use the first).')
    @argument("--site", default="resid_pre", help=f"What to patch: {', '.join(SITES)} (heads: layer x head).")
    @argument("--metric", default="logit_diff", help=f"{', '.join(METRICS)}.")
    @argument("--direction", default="denoise", help=f"{', '.join(DIRECTIONS)} (denoise: clean into corrupt).")
    @argument("--method", default="exact", choices=(*METHODS, "trace"),
              help="exact, attribution (gradient estimate), both (side by side, with their correlation), or trace "
                   "(causal tracing of --subject in --clean).")
    @argument("--subject", default=None, help="For --method trace: the text in --clean whose embeddings are noised.")
    @argument("--top-k", type=integer, default=5, help="Next-token candidates kept per cell.")
    @argument("--batch-size", type=integer, default=64, help="Patched runs per batched forward.")
    @worker_options("the exact sweep's layer rows")
    @line_magic
    @one_line_errors
    def patch(self, line: str):
        """Activation patching: which layer x position (or head) restores the clean answer."""
        args = parse_arguments(self.patch, line)
        subject = self.session.require_subject()
        answers = list(args.answers)
        check_positive(args, "top_k", "batch_size")
        if args.top_k > subject.vocab_size:
            raise UsageError(f"--top-k {args.top_k} is more than the {subject.vocab_size} tokens of the vocabulary.")
        if args.workers is not None:
            check_positive(args, "workers")
        if args.method == "trace":
            if args.workers is not None or args.ray_address is not None:
                raise UsageError("--workers shards patching's exact sweep; --method trace runs here: drop --workers.")
            from ..analyses.tracing import trace

            if args.corrupt is not None:
                raise UsageError("--method trace noises --subject inside --clean; drop --corrupt.")
            if args.clean is None or args.subject is None:
                raise UsageError('--method trace needs --subject (the part of --clean to noise) and --clean, e.g. '
                                 '--clean "The Eiffel Tower is in" --subject "Eiffel Tower".')
            if (args.site, args.metric, args.direction) != ("resid_pre", "logit_diff", "denoise"):
                raise UsageError("--site, --metric and --direction are for patching; --method trace restores "
                                 "every site and measures p(answer): drop them.")
            if len(answers) > 1:
                raise UsageError("--method trace follows one answer: give at most one --answers token.")
            return trace(subject, args.clean, args.subject, answer=answers[0] if answers else None,
                         top_k=args.top_k, batch_size=args.batch_size)
        if args.subject is not None:
            raise UsageError("--subject is for --method trace; for patching give --clean and --corrupt.")
        return patch(
            subject, args.clean, args.corrupt, answers, site=args.site, metric=args.metric,
            direction=args.direction, method=args.method, top_k=args.top_k, batch_size=args.batch_size,
            workers=args.workers, ray_address=args.ray_address,
        )


MAGICS = (PatchingMagics,)
