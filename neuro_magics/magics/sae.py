"""%sae: train or load a sparse autoencoder on a site, read its features, steer by one."""

from __future__ import annotations

import argparse
import math

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.corpus import split_texts
from ..analyses.sae import SAE_SITES, SaeTrainingConfig, SparseAutoencoder, load_sae, train_sae
from ..core.interventions import reset_interventions
from .session import (SessionMagics, check_output_name, check_positive, integer, one_line_errors, parse_arguments,
                      worker_options)

ACTIONS = ("train", "load", "show", "steer", "ablate")
#: ``%sae train``'s options that are ``SaeTrainingConfig`` fields: option (dest) -> field.
TRAINING_OPTIONS = {SaeTrainingConfig.flag(name): name for name in SaeTrainingConfig.names()}
#: The options each action reads; any other written option is refused, not silently ignored.
ACTION_OPTIONS = {
    "train": {*TRAINING_OPTIONS, "corpus", "output", "workers", "ray_address"},
    "load": {"step", "block", "site", "sae_id", "corpus", "output"},
    "show": {"feature", "search", "text", "n"},
    "steer": {"feature", "coef"},
    "ablate": {"feature", "reset"},
}


def training_options(magic):
    """``%sae train``'s options from ``SaeTrainingConfig``: its fields, their help and defaults
    (where the SAE reads, ``--step`` / ``--block`` / ``--site``, is shared with load)."""
    for option, name in reversed(TRAINING_OPTIONS.items()):
        if option not in ("step", "block", "site"):
            kind = float if isinstance(SaeTrainingConfig.default(name), float) else integer
            magic = argument(f"--{option}", type=kind, default=None, help=f"train: {SaeTrainingConfig.help(name)}.")(magic)
    return magic


@magics_class
class SaeMagics(SessionMagics):
    @magic_arguments()
    @argument("action", choices=ACTIONS, help="train or load an SAE, show its features, steer by one, or ablate one.")
    @argument("name", nargs="?", default=None,
              help="load: a folder (SAELens or sparsify format) or hub name; show/steer/ablate: the SAE's variable "
                   "(default: the last trained or loaded).")
    @argument("--step", type=integer, default=None,
              help=f"train: {SaeTrainingConfig.help('step')}; load: overrides the file's hook.")
    @argument("--block", type=integer, default=None,
              help=f"train: {SaeTrainingConfig.help('block')}; load: overrides the file's hook.")
    @argument("--layer", type=integer, default=None, help=argparse.SUPPRESS)
    @argument("--site", default=None, choices=SAE_SITES,
              help=f"train: {SaeTrainingConfig.help('site')}; load: overrides the file's hook.")
    @argument("--sae-id", default=None, help="load: the SAE inside SOURCE (a SAELens sae_id or a sparsify hookpoint).")
    @training_options
    @argument("--corpus", default=None,
              help="train: builtin (default), builtin:math,code, or a .txt/.jsonl file; texts in the cell replace it.")
    @argument("-o", "--output", default=None, metavar="NAME", help="train/load: also store the SAE in NAME.")
    @argument("--feature", type=integer, default=None, help="show/steer/ablate: the feature.")
    @argument("--search", default=None, metavar="TOKEN", help="show: the features that fire most on TOKEN.")
    @argument("--text", default=None, help="show: the features most active on TEXT (runs the model on it).")
    @argument("--n", type=integer, default=8, help="show: contexts / tokens / features listed.")
    @argument("--coef", type=float, default=None, help="steer: units of the feature added at every position.")
    @argument("--reset", action="store_true", help="ablate: remove every SAE feature ablation.")
    @worker_options("train's activation capture")
    @line_cell_magic
    @one_line_errors
    def sae(self, line: str, cell: str | None = None):
        """Sparse-autoencoder features of one site. %sae train --step 12 [-o sae12] trains a TopK
        SAE on program step 12 (--block B: on original block B); %sae load FOLDER|HUB_NAME [--sae-id ID] reads a SAELens or sparsify SAE; %sae show
        [NAME] shows the feature dashboard, --feature F (or --search TOKEN, --text TEXT) prints a
        feature's reading; %sae steer [NAME] --feature F --coef C adds it to the stream, %sae ablate
        [NAME] --feature F removes it from the site (%sae ablate --reset puts every one back); both show in
        %model. Python:
        nm.train_sae(subject, ...), nm.load_sae(subject, source, ...)."""
        args = parse_arguments(self.sae, line)
        if "layer" in args.options_given:
            raise UsageError("--layer is ambiguous under a layer program: say --step N (a position in the program) "
                             "or --block N (an original block of the model).")
        for name in sorted(args.options_given - ACTION_OPTIONS[args.action]):
            users = [f"%sae {action}" for action in ACTIONS if name in ACTION_OPTIONS[action]]
            raise UsageError(f"--{name.replace('_', '-')} is for {' or '.join(users)}, not %sae {args.action}.")
        check_positive(args, "n")
        check_output_name(self.shell, args.output)
        if args.action == "train":
            return self._train(args, cell)
        if cell and cell.strip():
            raise UsageError(f"%sae {args.action} takes no cell; texts go with %%sae train.")
        if args.action == "load":
            return self._load(args)
        if args.reset:
            if args.feature is not None or args.name is not None:
                raise UsageError("%sae ablate --reset removes every SAE feature ablation: give it no feature or SAE.")
            removed = reset_interventions(self.session.require_subject(), 'sae_ablate')
            print(f"Removed {removed} SAE feature ablation(s)." if removed else "No SAE feature ablation is installed: nothing to remove.")
            return None
        sae = self._find(args.name)
        if args.action == "show":
            return self._show(sae, args)
        if args.action == "ablate":
            if args.feature is None:
                raise UsageError("%sae ablate needs --feature F, e.g. %sae ablate --feature 12 (--reset undoes them).")
            intervention = sae.ablate(self.session.require_subject(), args.feature)
            print(f"Active until %sae ablate --reset: {intervention.description}.")
            return None
        if args.feature is None or args.coef is None or not math.isfinite(args.coef):
            raise UsageError("%sae steer needs --feature F and a finite --coef C, e.g. %sae steer --feature 12 --coef 4.")
        intervention = sae.steer(self.session.require_subject(), args.feature, args.coef)
        print(f"Installed: {intervention.description}. %model lists it; %steer --reset removes it.")
        return None

    def _train(self, args, cell: str | None) -> SparseAutoencoder:
        if args.step is None and args.block is None:
            raise UsageError("%sae train needs --step N (program step) or --block N (original block), e.g. "
                             "%sae train --step 12.")
        if cell is not None and not cell.strip():
            raise UsageError("The cell is empty: write texts below %%sae train (one per line, or blocks between blank "
                             "lines), or run %sae train on one line for the built-in corpus.")
        texts = split_texts(cell) if cell is not None else None
        if texts is not None and args.corpus is not None:
            raise UsageError("Give the texts either in the cell or with --corpus, not both.")
        config = SaeTrainingConfig(**{name: getattr(args, option) for option, name in TRAINING_OPTIONS.items()
                                      if getattr(args, option) is not None})
        result = train_sae(self.session.require_subject(), config=config,
                           texts=texts if texts is not None else args.corpus, workers=args.workers,
                           ray_address=args.ray_address)
        self.session.sae = result
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        if result.report["interrupted"]:
            print(f"Interrupted: kept the SAE after {result.report['steps_done']} of {config.steps} steps; its report "
                  f"reads the first {result.report['held_out_texts']} held-out texts.")
        return result

    def _load(self, args) -> SparseAutoencoder:
        if args.name is None:
            raise UsageError("%sae load needs a source, e.g. %sae load ./my_sae or %sae load REPO --sae-id layers.5.")
        result = load_sae(self.session.require_subject(), args.name, sae_id=args.sae_id, step=args.step,
                          block=args.block, site=args.site, texts=args.corpus)
        self.session.sae = result
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result

    def _find(self, name: str | None) -> SparseAutoencoder:
        if name is None:
            if self.session.sae is None:
                raise UsageError("No SAE yet: run %sae train --step N (or %sae load FOLDER) first, or name one: "
                                 "%sae show NAME.")
            return self.session.sae
        found = self.shell.user_ns.get(name)
        if not isinstance(found, SparseAutoencoder):
            raise UsageError(f"{name!r} is not an SAE in this notebook: train one with %sae train --step N -o {name}.")
        return found

    def _show(self, sae: SparseAutoencoder, args) -> None:
        if args.search is not None:
            print(f"Features that fire most on {args.search!r} (mean activation there):")
            for feature, value in sae.search(args.search, args.n):
                print(f"  {feature:>6}  {value:8.3f}")
            return None
        if args.text is not None:
            print(f"Features most active on {args.text!r} (mean activation over its tokens):")
            for feature, value in sae.search_text(self.session.require_subject(), args.text, args.n):
                print(f"  {feature:>6}  {value:8.3f}")
            return None
        if args.feature is None:
            return sae
        feature, subject = args.feature, self.session.require_subject()
        contexts = sae.top_contexts(feature, args.n)
        frequency = float(sae.frequencies[feature])
        print(f"Feature {feature} of {sae.site} at step {sae.step} (block {sae.block}): fires on {frequency:.2%} of held-out tokens.")
        print("Top activating contexts:")
        for context in contexts:
            print(f"  {context['activation']:8.3f}  {context['left']!r} [{context['token']!r}] {context['right']!r}")
        if not contexts:
            print("  (it never fires on the held-out texts)")
        for band in sae.quantile_samples(feature, per_band=2):
            if band["contexts"]:
                print(f"Interval {band['low']:.3g}-{band['high']:.3g} ({band['share']:.1%} of its firings):")
            for context in band["contexts"]:
                print(f"  {context['activation']:8.3f}  {context['left']!r} [{context['token']!r}] {context['right']!r}")
        effects = sae.logit_effects(subject, feature, args.n)
        for side, label in (("top", "Raises"), ("bottom", "Lowers")):
            print(f"{label}: " + ", ".join(f"{piece!r} {value:+.2f}" for piece, value in effects[side]))
        counts, edges = sae.histogram(feature, bins=10)
        if counts.sum():
            print("Activation histogram: " + "  ".join(f"{edges[i]:.2g}+:{c}" for i, c in enumerate(counts)))
        return None


MAGICS = (SaeMagics,)
