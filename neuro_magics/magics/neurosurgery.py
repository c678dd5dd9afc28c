"""%edit, %prune, %weights: thin shells over nm.edit, nm.prune, nm.weight_views and nm.quantize
(weight changes, all reversible)."""

from __future__ import annotations

from argparse import ArgumentTypeError

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses import editing, pruning, quantization, weights
from ..analyses.diffing import DEFAULT_NEW_TOKENS
from ..core.interventions import reset_interventions
from .session import (SessionMagics, check_positive, integer, one_line_errors, parse_arguments, print_active,
                      refuse_options)


def _block(value: str | None, option: str) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return integer(value)
    except ArgumentTypeError:
        raise UsageError(f"{option} must be a block index or auto (digits 0-9; got {value!r}).") from None


@magics_class
class NeurosurgeryMagics(SessionMagics):
    @magic_arguments()
    @argument("--prompt", default=None, help='The fact\'s prompt, {} where the subject goes: "{} plays the sport of".')
    @argument("--subject", default=None, help='The words the fact is about: "LeBron James".')
    @argument("--target", default=None, help='The new answer (several tokens are fine): " football".')
    @argument("--block", default=None, help="The original block (layer of the model, not a step of the program) whose "
                                            "MLP is edited, or auto (default: causal tracing picks it).")
    @argument("--layer", default=None, help="Old spelling of --block, only under the identity program (where a block "
                                            "is its step).")
    @argument("--paraphrase", action="append", default=None,
              help="Another prompt for the same fact, mentioning the subject (repeatable; default: the prompt "
                   "behind unrelated contexts).")
    @argument("--neighbour", action="append", default=None,
              help="Another subject for the same prompt, whose answer should not change (repeatable).")
    @argument("--max-new-tokens", type=integer, default=DEFAULT_NEW_TOKENS, help="Tokens generated per prompt in the diff.")
    @argument("--no-diff", action="store_true", help="Skip the before/after generations.")
    @argument("--undo", action="store_true", help="Revert the last edit.")
    @argument("--reset", action="store_true", help="Revert every edit.")
    @argument("--list", action="store_true", help="List the active edits.")
    @line_magic
    @one_line_errors
    def edit(self, line: str):
        """Rewrite one fact in the model's weights (ROME, a rank-one update of one MLP); shows
        efficacy, paraphrases, neighbours and the before/after diff. --undo reverts the last
        edit, --reset all of them, bit for bit."""
        args = parse_arguments(self.edit, line)
        check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        actions = [name for name in ("undo", "reset", "list") if getattr(args, name)]
        if actions:
            if args.options_given - {actions[0]}:
                raise UsageError(f"--{actions[0]} takes no other options.")
            if args.undo:
                print(f"Reverted: {editing.undo_edit(subject).description}")
            elif args.reset:
                print(f"Reverted {reset_interventions(subject, 'edit')} edit(s).")
            else:
                print_active(subject, "edit", "edits")
            return None
        missing = [f"--{name}" for name in ("prompt", "subject", "target") if getattr(args, name) is None]
        if missing:
            raise UsageError(f"%edit needs {', '.join(missing)}, e.g. %edit --prompt \"{{}} plays the sport of\" "
                             "--subject \"LeBron James\" --target \" football\".")
        result = editing.edit(
            subject, args.prompt, args.subject, args.target, block=_block(args.block, "--block"),
            layer=_block(args.layer, "--layer"), paraphrases=args.paraphrase,
            neighbours=args.neighbour or (), diff=not args.no_diff, max_new_tokens=args.max_new_tokens,
        )
        print(f"Active until %edit --undo / --reset: {subject.interventions[-1].description}")
        return result

    @magic_arguments()
    @argument("--method", default=None, help="wanda, magnitude, or steps (ShortGPT: drop the steps of the layer "
                                             "program with the lowest Block Influence). layers: old spelling of steps, "
                                             "only under the identity program.")
    @argument("--sparsity", type=float, default=None, help="Fraction of each output row removed (wanda, magnitude; "
                                                           "default 0.5).")
    @argument("--drop-steps", type=integer, default=None, help="How many steps (positions of the layer program, not "
                                                                "blocks) to drop (steps).")
    @argument("--drop", type=integer, default=None, help="Old spelling of --drop-steps, only under the identity "
                                                          "program (where a step is its block).")
    @argument("--corpus", default="builtin", help="Calibration text: builtin, or a text file (wanda, steps).")
    @argument("--reset", action="store_true", help="Restore every pruned weight (steps: use %%reset_layers).")
    @line_magic
    @one_line_errors
    def prune(self, line: str):
        """Prune by Wanda, magnitude or step removal; reports perplexity, probe scores and
        parameters before and after. Reversible: %prune --reset restores the weights bit for
        bit, %reset_layers the program; nm.save_materialized writes the pruned model."""
        args = parse_arguments(self.prune, line)
        subject = self.session.require_subject()
        others = ("method", "sparsity", "drop_steps", "drop", "corpus")
        if args.reset:
            refuse_options(args, others, "does not go with --reset: run %prune --reset on its own.")
            restored = reset_interventions(subject, 'prune')
            print(f"Restored the weights of {restored} pruning(s)." if restored else "No pruning is installed: nothing to restore.")
            return None
        if args.method is None:
            refuse_options(args, others, "needs --method wanda, magnitude or steps.")
            print_active(subject, "prune", "prunings")
            return None
        if args.method == "magnitude":
            refuse_options(args, ("corpus",), "is for wanda and steps: magnitude pruning reads only the weights.")
        result = pruning.prune(subject, args.method, args.sparsity, drop_steps=args.drop_steps, drop=args.drop,
                               corpus=args.corpus)
        undo = "%reset_layers" if result.method == "steps" else "%prune --reset"
        print(f"Active until {undo}: {result!r}")
        return result

    @magic_arguments()
    @argument("--quantize", type=integer, default=None, help="Simulate rounding the block matrices to 4 or 8 bits.")
    @argument("--blocks", default=None, help="Original blocks (layers of the model, not steps of the program) to round "
                                             "(--quantize), e.g. 0-5; default all.")
    @argument("--layers", default=None, help="Old spelling of --blocks, only under the identity program (where a "
                                             "block is its step).")
    @argument("--prompt", action="append", default=None,
              help="Prompt for the rounding's before/after diff (repeatable; default: the built-in diff prompts).")
    @argument("--max-new-tokens", type=integer, default=DEFAULT_NEW_TOKENS, help="Tokens generated per prompt in the diff.")
    @line_magic
    @one_line_errors
    def weights(self, line: str):
        """Norms and singular spectra of every head's Q, K, V, O and OV / QK circuits and the MLP
        norms (click a head for its spectra); with --quantize 4|8, the simulated rounding's weight
        error and its diff (the model is left as it was)."""
        args = parse_arguments(self.weights, line)
        check_positive(args, "max_new_tokens")
        subject = self.session.require_subject()
        if args.quantize is None:
            refuse_options(args, ("blocks", "layers", "prompt", "max_new_tokens"), "goes with --quantize 4|8.")
            return weights.weight_views(subject)
        if args.quantize not in (4, 8):
            raise UsageError(f"--quantize must be 4 or 8 (got {args.quantize}).")
        return quantization.quantize(subject, args.quantize, blocks=args.blocks, layers=args.layers, prompts=args.prompt,
                                     max_new_tokens=args.max_new_tokens)


MAGICS = (NeurosurgeryMagics,)
