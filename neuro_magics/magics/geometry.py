"""%%project and %probe: thin shells over nm.project and nm.probe (the geometry of representations)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.activations import VECTOR_SITES
from ..analyses.probing import KINDS, POOLING, ProbeResult, probe, tasks
from ..analyses.projection import COLORS, METHODS, UNITS, ProjectionResult, check_clusters, project
from .session import SessionMagics, check_output_name, integer, one_line_errors, parse_arguments, worker_options


def labelled_lines(cell: str) -> tuple[list[str], list[str] | None]:
    """One text per non-empty line, optionally ``label<TAB>text`` (all lines or none)."""
    lines = [line for line in cell.splitlines() if line.strip()]
    tabbed = ["\t" in line for line in lines]
    if any(tabbed) and not all(tabbed):
        first = tabbed.index(False) if tabbed[0] else tabbed.index(True)
        raise UsageError(f"Line {first + 1} {'has no' if tabbed[0] else 'has a'} label<TAB>: label every line "
                         "or none.")
    if not any(tabbed):
        return lines, None
    pairs = [line.split("\t", 1) for line in lines]
    for number, (label, text) in enumerate(pairs, 1):
        if not label.strip() or not text.strip():
            raise UsageError(f"Line {number} needs both a label and a text around its TAB.")
    return [text for _, text in pairs], [label.strip() for label, _ in pairs]


def _check_choice(option: str, value: str, choices) -> None:
    if value not in choices:
        raise UsageError(f"Unknown {option} {value!r}: use one of {', '.join(choices)}.")


@magics_class
class GeometryMagics(SessionMagics):
    @magic_arguments()
    @argument("--site", default="resid_post", help=f"Where to read: {', '.join(VECTOR_SITES)} (default: %(default)s).")
    @argument("--steps", default=None, help="Program steps (positions in the layer program) to map: all, 6,12,18 "
                                            "or 10-20 (default: all).")
    @argument("--layers", default=None, help="Old spelling of --steps, only under the identity program (where a step "
                                             "is its block).")
    @argument("--method", default="pca", help=f"{', '.join(METHODS)} (default: pca; umap and tsne take longer).")
    @argument("--unit", default="token", help="token: one point per token; text: one per line (default: token).")
    @argument("--pool", default="mean", help="With --unit text: mean or last token of each text (default: mean).")
    @argument("--color", default=None, help=f"Colour points by {', '.join(COLORS)} (default: label, or cluster "
                                            "with --clusters).")
    @argument("--clusters", default=None, help="K for k-means, or auto (HDBSCAN).")
    @argument("--demo", action="store_true", help="The built-in bilingual demo: the same sentences in English "
                                                   "and French.")
    @argument("--seed", type=integer, default=0, help="Seed of UMAP, t-SNE and k-means.")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in variable NAME.")
    @worker_options("the activation capture")
    @line_cell_magic
    @one_line_errors
    def project(self, line: str, cell: str | None = None) -> ProjectionResult:
        """Map the activations of the texts in the cell (one per line, optionally label<TAB>text)
        to 2-D at each program step, aligned so points do not jump between steps. Box-select points in
        the map: their indices land in result.selected. Python: nm.project(subject, texts, labels)."""
        args = parse_arguments(self.project, line)
        check_output_name(self.shell, args.output)
        _check_choice("--site", args.site, VECTOR_SITES)
        _check_choice("--method", args.method, METHODS)
        _check_choice("--unit", args.unit, UNITS)
        _check_choice("--pool", args.pool, POOLING)
        clusters = check_clusters(args.clusters)
        if args.color is not None:
            _check_choice("--color", args.color, COLORS)
            if args.color == "cluster" and clusters is None:
                raise UsageError("--color cluster needs --clusters K or --clusters auto.")
        body = cell or ""
        if args.demo and body.strip():
            raise UsageError("--demo uses the built-in sentences: leave the cell empty, or drop --demo.")
        if not args.demo and not body.strip():
            raise UsageError("Write one text per line below %%project (optionally label<TAB>text), or use --demo.")
        texts, labels = (None, None) if args.demo else labelled_lines(body)
        subject = self.session.require_subject()
        result = project(subject, texts, labels, steps=args.steps, layers=args.layers, site=args.site, method=args.method,
                         unit=args.unit, pooling=args.pool, clusters=clusters, color=args.color, seed=args.seed,
                         workers=args.workers, ray_address=args.ray_address)
        if result.interrupted:
            print(f"Interrupted: steps {', '.join(map(str, result.steps))} were mapped and kept.")
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result

    @magic_arguments()
    @argument("--data", default=None, metavar="FILE", help='JSONL file, one {"text": ..., "label": ...} per line '
                                                            '(optional "group": texts kept in one fold).')
    @argument("--task", default=None, help="A built-in labelled task: " + ", ".join(tasks()) + ".")
    @argument("--steps", default=None, help="Program steps (positions in the layer program) to probe: all, 6,12,18 "
                                            "or 10-20 (default: all).")
    @argument("--layers", default=None, help="Old spelling of --steps, only under the identity program (where a step "
                                             "is its block).")
    @argument("--kind", default="logreg", help=f"{' or '.join(KINDS)} (default: logreg).")
    @argument("--cv", type=integer, default=5, help="Cross-validation folds (default: 5).")
    @argument("--site", default="resid_pre", help="Where to read (default: resid_pre, where %%steer adds).")
    @argument("--pool", default="mean", help="mean or last token of each text (default: mean).")
    @argument("-o", "--output", default=None, metavar="NAME", help="Also store the result in variable NAME.")
    @worker_options("the activation capture")
    @line_magic
    @one_line_errors
    def probe(self, line: str) -> ProbeResult:
        """A linear probe per program step, cross-validated, with a shuffled-label control; shows
        accuracy by step. result.direction[s] steers at the block step s ran:
        nm.steer(m, block=result.block_of(s), coef=1, vector=result.direction[s]).
        Python: nm.probe(subject, data_or_file, task=...)."""
        args = parse_arguments(self.probe, line)
        check_output_name(self.shell, args.output)
        if (args.data is None) == (args.task is None):
            raise UsageError(f"Give exactly one of --data FILE.jsonl or --task ({', '.join(tasks())}).")
        if args.task is not None:
            _check_choice("--task", args.task, tasks())
        _check_choice("--kind", args.kind, KINDS)
        _check_choice("--site", args.site, VECTOR_SITES)
        _check_choice("--pool", args.pool, POOLING)
        if args.cv < 2:
            raise UsageError(f"--cv must be at least 2 folds (got {args.cv}).")
        subject = self.session.require_subject()
        result = probe(subject, args.data, task=args.task, steps=args.steps, layers=args.layers, kind=args.kind, cv=args.cv,
                       site=args.site, pooling=args.pool, workers=args.workers, ray_address=args.ray_address)
        if args.output is not None:
            self.shell.user_ns[args.output] = result
        return result


MAGICS = (GeometryMagics,)
