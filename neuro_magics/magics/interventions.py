"""%patch, %ablate, %steer: thin shells over nm.patch / nm.trace, nm.ablate and nm.steer."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses import interventions
from ..core.interventions import active_interventions, reset_interventions
from ..analyses.patching import DIRECTIONS, METHODS, METRICS, SITES, patch
from .session import SessionMagics, one_line_errors, parse_arguments


@magics_class
class InterventionMagics(SessionMagics):
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
    @argument("--top-k", type=int, default=5, help="Next-token candidates kept per cell.")
    @argument("--batch-size", type=int, default=64, help="Patched runs per batched forward.")
    @line_magic
    @one_line_errors
    def patch(self, line: str):
        """Activation patching: which layer x position (or head) restores the clean answer."""
        args = parse_arguments(self.patch, line)
        subject = self.session.require_subject()
        answers = list(args.answers)
        _check_positive(args, "top_k", "batch_size")
        if args.top_k > subject.vocab_size:
            raise UsageError(f"--top-k {args.top_k} is more than the {subject.vocab_size} tokens of the vocabulary.")
        if args.method == "trace":
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
        )

    @magic_arguments()
    @argument("--heads", default=None, help="Heads as LAYER.HEAD, comma-separated: 9.6,9.9.")
    @argument("--layers", default=None, help="Whole layers (attention + MLP contributions): 3 or 3-5.")
    @argument("--neurons", default=None, help="MLP neurons as LAYER:NEURON, comma-separated: 5:123,5:77.")
    @argument("--mode", default="zero", help="zero, or mean (over every token of nm.analyses.interventions.REFERENCE_TEXT).")
    @argument("--reset", action="store_true", help="Remove every active ablation.")
    @argument("--prompt", action="append", default=None,
              help="Prompt for the before/after diff (repeatable; default: the built-in diff prompts).")
    @argument("--max-new-tokens", type=int, default=24, help="Tokens generated per prompt in the diff.")
    @argument("--no-diff", action="store_true", help="Install without the before/after diff.")
    @line_magic
    @one_line_errors
    def ablate(self, line: str):
        """Knock out heads, layers or neurons until %ablate --reset; shows the before/after diff.
        With no arguments, lists the active ablations."""
        args = parse_arguments(self.ablate, line)
        _check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        if args.reset:
            return self._reset(subject, "ablate", args, ("heads", "layers", "neurons"))
        if args.heads is None and args.layers is None and args.neurons is None:
            return self._list(subject, "ablate")
        intervention = interventions.ablate(
            subject, heads=args.heads, layers=args.layers, neurons=args.neurons, mode=args.mode, install=False
        )
        return self._apply(subject, intervention, args)

    @magic_arguments()
    @argument("--pos", default=None, help="Positive text of one contrast pair (its last token is used).")
    @argument("--neg", default=None, help="Negative text of the pair.")
    @argument("--pairs", default=None, help='JSONL file, one {"positive": ..., "negative": ...} per line.')
    @argument("--layer", type=int, default=None, help="Block whose input is steered (n_layers: right before the unembedding).")
    @argument("--coef", type=float, default=None, help="How much of the vector to add.")
    @argument("--reset", action="store_true", help="Remove every active steering vector.")
    @argument("--prompt", action="append", default=None,
              help="Prompt for the before/after diff (repeatable; default: the built-in diff prompts).")
    @argument("--max-new-tokens", type=int, default=24, help="Tokens generated per prompt in the diff.")
    @argument("--no-diff", action="store_true", help="Install without the before/after diff.")
    @line_magic
    @one_line_errors
    def steer(self, line: str):
        """Activation addition until %steer --reset; shows the before/after diff. With no
        arguments, lists the active steering vectors."""
        args = parse_arguments(self.steer, line)
        _check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        if args.reset:
            return self._reset(subject, "steer", args, ("pos", "neg", "pairs", "layer", "coef"))
        if all(getattr(args, name) is None for name in ("pos", "neg", "pairs", "layer", "coef")):
            return self._list(subject, "steer")
        if args.layer is None or args.coef is None:
            raise UsageError("Steering needs --layer N and --coef X, e.g. %steer --pos Love --neg Hate --layer 6 --coef 5.")
        intervention = interventions.steer(
            subject, layer=args.layer, coef=args.coef, pos=args.pos, neg=args.neg,
            pairs=args.pairs, install=False,
        )
        return self._apply(subject, intervention, args)

    # -- shared ------------------------------------------------------------------------------

    def _apply(self, subject, intervention, args):
        result = None
        if not args.no_diff:
            from ..analyses.diffing import compare

            prompts = list(args.prompt) if args.prompt else None
            result = compare(subject, lambda: intervention.applied(subject), prompts,
                             max_new_tokens=args.max_new_tokens, label_after=intervention.kind)
        intervention.install(subject)
        print(f"Active until %{intervention.kind} --reset: {intervention.description}")
        return result

    @staticmethod
    def _reset(subject, kind, args, other_options):
        if any(getattr(args, name) is not None for name in other_options):
            raise UsageError(f"--reset takes no other options; run %{kind} --reset, then %{kind} again.")
        removed = reset_interventions(subject, kind)
        print(f"Removed {removed} {'ablation' if kind == 'ablate' else 'steering'} intervention(s).")

    @staticmethod
    def _list(subject, kind):
        active = active_interventions(subject, kind)
        if not active:
            print(f"No active {'ablations' if kind == 'ablate' else 'steering'}.")
        for number, intervention in enumerate(active, 1):
            print(f"{number}. {intervention.description}")


def _check_positive(args, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)}).")


MAGICS = (InterventionMagics,)
