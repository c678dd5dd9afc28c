"""%ablate, %steer: thin shells over nm.ablate and nm.steer (persistent interventions)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses import interventions
from ..analyses.diffing import DEFAULT_NEW_TOKENS
from ..core.interventions import reset_interventions
from .session import SessionMagics, check_positive, integer, one_line_errors, parse_arguments, print_active


@magics_class
class InterventionMagics(SessionMagics):
    @magic_arguments()
    @argument("--heads", default=None, help="Heads as BLOCK.HEAD (an original layer: every step that runs it), "
                                            "comma-separated: 9.6,9.9.")
    @argument("--blocks", default=None, help="Whole original blocks (attention + MLP contributions, at every step "
                                             "that runs them): 3 or 3-5.")
    @argument("--layers", default=None, help="Old spelling of --blocks, only under the identity program (where a "
                                             "block is its step).")
    @argument("--neurons", default=None, help="MLP neurons as BLOCK:NEURON, comma-separated: 5:123,5:77.")
    @argument("--network", default=None,
              help="Functional network(s) of the last %%networks (or --from NAME) to mask: key (all), 3, or 0,3.")
    @argument("--from", dest="source", default=None, metavar="NAME", help="With --network: the networks result in NAME.")
    @argument("--mode", default="zero",
              help="zero, or mean (over every token of nm.analyses.interventions.REFERENCE_TEXT); with --network: "
                   "zero, keep-only (zero every other MLP-output dim of the networks' blocks) or amplify (add --value).")
    @argument("--value", type=float, default=None, help="With --network --mode amplify: the amount added.")
    @argument("--reset", action="store_true", help="Remove every active ablation.")
    @argument("--prompt", action="append", default=None,
              help="Prompt for the before/after diff (repeatable; default: the built-in diff prompts).")
    @argument("--max-new-tokens", type=integer, default=DEFAULT_NEW_TOKENS, help="Tokens generated per prompt in the diff.")
    @argument("--no-diff", action="store_true", help="Install without the before/after diff.")
    @line_magic
    @one_line_errors
    def ablate(self, line: str):
        """Knock out heads, blocks or neurons until %ablate --reset; shows the before/after diff.
        With no arguments, lists the active ablations."""
        args = parse_arguments(self.ablate, line)
        check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        if args.reset:
            return self._reset(subject, "ablate", args)
        if args.network is not None:
            return self._apply(subject, self._network_mask(subject, args), args)
        if args.source is not None or args.value is not None:
            raise UsageError("--from and --value go with --network.")
        if all(getattr(args, name) is None for name in ("heads", "blocks", "layers", "neurons")):
            return print_active(subject, "ablate", "ablations")
        intervention = interventions.ablate(
            subject, heads=args.heads, blocks=args.blocks, layers=args.layers, neurons=args.neurons, mode=args.mode,
            install=False,
        )
        return self._apply(subject, intervention, args)

    def _network_mask(self, subject, args):
        from ..analyses.networks import NetworksResult

        if any(getattr(args, name) is not None for name in ("heads", "blocks", "layers", "neurons")):
            raise UsageError("--network masks a network alone: run %ablate again for heads, blocks or neurons.")
        if args.source is not None:
            found = self.shell.user_ns.get(args.source)
            if not isinstance(found, NetworksResult):
                raise UsageError(f"--from {args.source}: no networks result in that variable (run %%networks -o "
                                 f"{args.source}).")
        else:
            found = self.session.networks
            if found is None:
                raise UsageError("No networks yet: run %%networks first (or give --from NAME).")
        return interventions.mask_network(subject, found, args.network, mode=args.mode, value=args.value,
                                          install=False)

    @magic_arguments()
    @argument("--pos", default=None, help="Positive text of one contrast pair (its last token is used).")
    @argument("--neg", default=None, help="Negative text of the pair.")
    @argument("--pairs", default=None, help='JSONL file, one {"positive": ..., "negative": ...} per line.')
    @argument("--block", type=integer, default=None, help="The original block whose input is steered, at every step "
                                                          "that runs it (n_layers: right before the unembedding).")
    @argument("--layer", type=integer, default=None, help="Old spelling of --block, only under the identity program "
                                                          "(where a block is its step).")
    @argument("--coef", type=float, default=None, help="How much of the vector to add.")
    @argument("--reset", action="store_true", help="Remove every active steering vector.")
    @argument("--prompt", action="append", default=None,
              help="Prompt for the before/after diff (repeatable; default: the built-in diff prompts).")
    @argument("--max-new-tokens", type=integer, default=DEFAULT_NEW_TOKENS, help="Tokens generated per prompt in the diff.")
    @argument("--no-diff", action="store_true", help="Install without the before/after diff.")
    @line_magic
    @one_line_errors
    def steer(self, line: str):
        """Activation addition until %steer --reset; shows the before/after diff. With no
        arguments, lists the active steering vectors."""
        args = parse_arguments(self.steer, line)
        check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        if args.reset:
            return self._reset(subject, "steer", args)
        if all(getattr(args, name) is None for name in ("pos", "neg", "pairs", "block", "layer", "coef")):
            return print_active(subject, "steer", "steering")
        if (args.block is None and args.layer is None) or args.coef is None:
            raise UsageError("Steering needs --block N and --coef X, e.g. %steer --pos Love --neg Hate --block 6 --coef 5.")
        intervention = interventions.steer(
            subject, block=args.block, layer=args.layer, coef=args.coef, pos=args.pos, neg=args.neg,
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
    def _reset(subject, kind, args):
        if args.options_given - {"reset"}:
            raise UsageError(f"--reset takes no other options; run %{kind} --reset, then %{kind} again.")
        removed = reset_interventions(subject, kind)
        what = "ablation" if kind == "ablate" else "steering"
        print(f"Removed {removed} {what} intervention(s)." if removed else f"No {what} is installed: nothing to remove.")


MAGICS = (InterventionMagics,)
