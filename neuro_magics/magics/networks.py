"""%%networks: functional brain networks (ICA) of the loaded model, and their lesion experiment."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.corpus import split_texts
from ..analyses.networks import DEFAULT_COMPONENTS, DEFAULT_THRESHOLD, networks
from .session import (SessionMagics, check_output_name, check_positive, integer, one_line_errors, parse_arguments,
                      worker_options)


@magics_class
class NetworkMagics(SessionMagics):
    @magic_arguments()
    @argument("--components", type=integer, default=DEFAULT_COMPONENTS, help="Networks to find (FastICA components).")
    @argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
              help="z above which a neuron belongs to a network (the paper's 3.6).")
    @argument("--corpus", default=None,
              help="builtin (5 genres x 100 texts), builtin:math,code, or a .txt/.jsonl file. Texts in the cell "
                   "(one per line, or blocks between blank lines) replace it.")
    @argument("--blocks", default=None, help="Original blocks (layers of the model, read under the identity program) "
                                             "to read: a:b half-open or a-b inclusive (default: all).")
    @argument("--layers", default=None, help="Old spelling of --blocks, only under the identity program (where a "
                                             "block is its step).")
    @argument("--max-tokens", type=integer, default=None, help="Read at most N tokens (texts taken in turn from each genre).")
    @argument("--seed", type=integer, default=0, help="FastICA's random_state.")
    @argument("--lesion", action="store_true",
              help="Then score --probe with the key networks masked, random masks of the same size, keep-only.")
    @argument("--probe", default="facts", help="Lesion probe: facts, math, text, or a .jsonl file.")
    @argument("--seeds", type=integer, default=5, help="Random masks in the lesion control.")
    @argument("--score", default="logprob", choices=("logprob", "generate"), help="How the lesion scores the probe.")
    @argument("-o", "--output", default=None, metavar="NAME",
              help="Store the networks in NAME (and the lesion in NAME_lesion).")
    @worker_options("the corpus capture")
    @line_cell_magic
    @one_line_errors
    def networks(self, line: str, cell: str | None = None):
        """Find the model's functional networks: FastICA over every block's MLP output on a
        corpus; key neurons have z > --threshold. %ablate --network K|key masks one.
        Python: nm.networks(subject, texts, ...) and nm.network_lesion(subject, result, probe)."""
        args = parse_arguments(self.networks, line)
        check_positive(args, "components", "seeds")
        if args.max_tokens is not None:
            check_positive(args, "max_tokens")
        check_output_name(self.shell, args.output)
        if args.output is not None and args.lesion:
            check_output_name(self.shell, f"{args.output}_lesion")
        if cell is not None and not cell.strip():
            raise UsageError("The cell is empty: write texts below %%networks (one per line, or blocks between blank "
                             "lines), or run %networks on one line for the built-in corpus.")
        texts = split_texts(cell) if cell is not None else None
        if texts is not None and args.corpus is not None:
            raise UsageError("Give the texts either in the cell or with --corpus, not both.")
        subject = self.session.require_subject()
        if args.lesion:  # the probe is checked before the long part
            from ..core.probe_sets import load_probe

            load_probe(args.probe)
        result = networks(subject, texts if texts is not None else args.corpus, components=args.components,
                          threshold=args.threshold, blocks=args.blocks, layers=args.layers, max_tokens=args.max_tokens,
                          random_state=args.seed, workers=args.workers, ray_address=args.ray_address)
        self.session.networks = result
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        print("%ablate --network K|key masks these networks (--mode zero|keep-only|amplify).")
        if not args.lesion:
            return result
        if result.metadata.get("interrupted"):
            print("Interrupted: the networks of the texts read so far are kept; the lesion was not run "
                  "(%%networks --lesion again, or nm.network_lesion(subject, result, probe)).")
            return result
        from IPython.display import display

        from ..analyses.lesion import network_lesion

        display(result)
        lesion = network_lesion(subject, result, args.probe, seeds=args.seeds, score=args.score)
        if args.output is not None:
            self.shell.user_ns[f"{args.output}_lesion"] = lesion
        return lesion


MAGICS = (NetworkMagics,)
