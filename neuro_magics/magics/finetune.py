"""%finetune and %diff_models: thin shells over nm.finetune (and the adapter functions beside
it) and nm.diff_models."""

from __future__ import annotations

import re

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..analyses import finetune as lora
from ..analyses.model_diff import SIDE_HELP, diff_models
from .config_options import config_arguments, given_config
from .session import (SessionMagics, check_output_name, check_positive, integer, one_line_errors, parse_arguments,
                      split_line)

#: The adapter actions of %finetune, each a flag taking no training option.
ACTIONS = ("list", "off", "on", "merge", "unmerge", "remove", "save", "load")
#: action -> (the function doing it, what it says when it did something, what it says when there was nothing to do)
SWITCHES = {
    "off": ("adapters_off", "Turned off {} adapter(s); %finetune --on turns them on again.",
            "No adapter is installed: nothing to turn off."),
    "on": ("adapters_on", "Turned on {} adapter(s).", "No adapter is turned off: nothing to turn on."),
    "merge": ("merge_adapters", "Merged {} adapter(s) into the weights; %finetune --unmerge undoes it.",
              "No hooked adapter is installed: nothing to merge."),
    "unmerge": ("unmerge_adapters", "Unmerged {} adapter(s); the weights are as before the merge.",
                "No adapter is merged: nothing to unmerge."),
    "remove": ("remove_adapters", "Removed {} adapter(s); the base model is as it was.", "No adapter to remove."),
}
_WITHOUT_KIND = re.compile(r"^-[A-Za-z_]\w*$")


@magics_class
class FinetuneMagics(SessionMagics):
    @magic_arguments()
    @argument("--lora", action="store_true", help="Train a LoRA adapter on the cell's text (or --file) and install it.")
    @config_arguments(lora.FinetuneConfig)
    @argument("--file", default=None, help="A UTF-8 text file to train on instead of the cell.")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in NAME.")
    @argument("--list", action="store_true", help="List the installed and turned-off adapters.")
    @argument("--off", action="store_true", help="Turn the installed adapters off (kept for --on).")
    @argument("--on", action="store_true", help="Turn the adapters turned off with --off on again.")
    @argument("--merge", action="store_true", help="Write the hooked adapters into the weights (undone by --unmerge).")
    @argument("--unmerge", action="store_true", help="Take merged adapters out of the weights, bit for bit.")
    @argument("--remove", action="store_true", help="Remove every adapter; the base model is bit-identical after.")
    @argument("--save", default=None, metavar="DIR", help="Save the last installed adapter in peft's format.")
    @argument("--load", default=None, metavar="DIR", help="Install a peft LoRA adapter folder (ours or peft's).")
    @argument("--overwrite", action="store_true", help="--save: replace a non-empty folder.")
    @line_cell_magic
    @one_line_errors
    def finetune(self, line: str, cell: str | None = None):
        """A small LoRA fine-tune that leaves the base intact. %%finetune --lora [--rank 8] [--steps 100]
        [--lr 1e-3] [--modules q_proj,v_proj] trains on the cell's text (or --file PATH), with a live
        loss; Ctrl-C keeps the finished steps. The adapter shows in %model; %finetune --off / --on /
        --merge / --unmerge / --remove / --list / --save DIR / --load DIR manage adapters.
        Python: nm.finetune(subject, text, ...)."""
        args = parse_arguments(self.finetune, line)
        actions = [name for name in ACTIONS if getattr(args, name) not in (False, None)]
        training = [option.name for option in lora.FinetuneConfig.options()] + ["file"]
        given = [name for name in training if getattr(args, name) is not None]
        if actions:
            if len(actions) > 1 or args.lora or given or args.output is not None:
                raise UsageError(f"--{actions[0]} takes no other option (one action at a time, no training options).")
            if cell and cell.strip():
                raise UsageError(f"%finetune --{actions[0]} takes no cell; text to train on goes with %%finetune --lora.")
            if args.overwrite and not actions == ["save"]:
                raise UsageError("--overwrite goes with --save DIR.")
            return self._manage(actions[0], args)
        if not args.lora:
            raise UsageError("Say what to do: %%finetune --lora (train on the cell), or one of "
                             + ", ".join(f"--{name}" for name in ACTIONS) + ".")
        check_output_name(self.shell, args.output)
        has_cell = bool(cell and cell.strip())
        if has_cell and args.file is not None:
            raise UsageError("Give the text either in the cell or with --file, not both.")
        if not has_cell and args.file is None:
            raise UsageError("Nothing to train on: write the text in the cell (%%finetune --lora) or give --file PATH.")
        config = given_config(lora.FinetuneConfig, args)
        result = lora.finetune(self.session.require_subject(), cell if has_cell else None, file=args.file, config=config)
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result

    def _manage(self, action: str, args) -> None:
        subject = self.session.require_subject()
        if action == "list":
            active, parked = lora.active_adapters(subject), lora.parked_adapters(subject)
            if not active and not parked:
                print("No adapters.")
            for number, intervention in enumerate(active, 1):
                print(f"{number}. {intervention.description}")
            for adapter in parked:
                print(f"off: {adapter.describe()}")
        elif action in SWITCHES:
            switch, done, nothing = SWITCHES[action]
            count = getattr(lora, switch)(subject)
            print(done.format(count) if count else nothing)
        elif action == "save":
            print(f"Saved the adapter to {lora.save_adapter(subject, args.save, overwrite=args.overwrite)} "
                  "(peft's format: PeftModel.from_pretrained(model, folder) loads it).")
        else:
            print(f"Installed: {lora.load_adapter(subject, args.load).description}.")

    @magic_arguments()
    @argument("a", help=f"Model A: {SIDE_HELP}.")
    @argument("b", help="Model B, the same kinds of spec.")
    @argument("--corpus", default=None,
              help="Texts to compare on: builtin, builtin:math,code, or a .txt/.jsonl file (default: 2 texts per genre).")
    @argument("--max-tokens", type=integer, default=64, help="Tokens read per text.")
    @argument("--no-probes", action="store_true", help="Skip the before/after probe scores (forgetting).")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in NAME.")
    @line_magic
    @one_line_errors
    def diff_models(self, line: str):
        """Diff two versions of the loaded model: per-token KL of next-token distributions, residual
        drift per layer (L2, cosine, PCA), weight change per matrix (and its rank) and probe scores.
        A and B: current, original, -adapter (or -steer, ...: current without those), a layer program
        (0-12,8-29), or a checkpoint folder / hub id. The model's state is restored afterwards.
        Python: nm.diff_models(subject, a, b)."""
        # "-adapter" reads as an option to argparse: spell a side without a kind "no-adapter".
        words = ["no-" + word[1:] if _WITHOUT_KIND.match(word) and word not in ("-o", "-h") else word for word in split_line(line)]
        args = self.diff_models.parser.parse_args(words)
        check_positive(args, "max_tokens")
        check_output_name(self.shell, args.output)
        result = diff_models(self.session.require_subject(), args.a, args.b, corpus=args.corpus,
                             max_tokens=args.max_tokens, probes=not args.no_probes)
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result


MAGICS = (FinetuneMagics,)
