"""What the magics share within one IPython shell: the loaded model, how a magic line is
read, and error handling."""

from __future__ import annotations

import argparse
import functools
import keyword
import re
import shlex
import warnings

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from IPython.core.magic_arguments import argument

from ..core.errors import NeuroMagicsError, NeuroMagicsWarning, NoModelError
from ..core.interventions import active_interventions
from ..core.subject import Subject


class Session:
    """The model the magics act on (one per shell)."""

    def __init__(self) -> None:
        self.subject: Subject | None = None
        self.networks = None  # the last %%networks result: what %ablate --network masks
        self.sae = None  # the last %sae train result: what %sae show / steer read by default

    def require_subject(self) -> Subject:
        if self.subject is None:
            raise NoModelError(
                "No model is loaded: run %load_model first (with no argument it loads the built-in "
                "SmolLM2-135M-Instruct)."
            )
        return self.subject


class SessionMagics(Magics):
    """Base of our magics classes: each acts on the shell's shared Session."""

    def __init__(self, shell, session: Session):
        super().__init__(shell)
        self.session = session


def magic_line(line: str) -> str:
    """The line without the trailing ``;`` that IPython reads as "do not show the output"."""
    return line.rstrip().removesuffix(";").rstrip()


def split_line(line: str) -> list[str]:
    """Shell-like words: quotes group and are removed (``--save "/dir/my model"`` is one
    path), as a POSIX shell reads them; an unquoted ``#`` starts a comment (IPython hands a
    line magic its comment). IPython's own splitter keeps the quotes."""
    try:
        return shlex.split(magic_line(line), comments=True)
    except ValueError as error:
        raise UsageError(f"Cannot read the line ({error}): close every quote, or quote text that holds one "
                         "with the other kind (\"it's\").") from None


#: A word such as ``-1:3`` or ``-2,5``: argparse would read it as an unknown option.
_NEGATIVE_LOOKING = re.compile(r"^-[0-9][0-9.:,-]*$")


class _NotGiven:
    """The value of an option absent from the line (told apart from its default)."""


def parse_arguments(magic, line: str) -> argparse.Namespace:
    """Parse a magic line against the magic's ``@argument``s with shell-like quoting, once.

    A negative-looking range (``-1:3``) is read as a value, so the range reader can say what
    is allowed instead of argparse's "unrecognized arguments". ``args.options_given`` holds
    the options written in the line (a default cannot be told from the same value typed)."""
    parser = magic.parser
    parser._negative_number_matcher = _NEGATIVE_LOOKING  # argparse's own hook for negative-number values
    # argparse fills in a default only where the namespace has no value yet: every option starts
    # marked, so one still marked after the parse was not written, and gets its default here.
    absent = _NotGiven()
    optional = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    marked = {action.dest: action for action in optional if not isinstance(action, argparse._AppendAction)}
    args = parser.parse_args(split_line(line), argparse.Namespace(**dict.fromkeys(marked, absent)))
    given = {action.dest for action in optional
             if getattr(args, action.dest, None) is not (absent if action.dest in marked else action.default)}
    for dest, action in marked.items():
        if getattr(args, dest) is absent:
            default = action.default
            if isinstance(default, str) and action.type is not None:
                default = parser._get_value(action, default)  # as argparse converts a string default
            setattr(args, dest, default)
    args.options_given = frozenset(given)
    return args


def refuse_options(args: argparse.Namespace, names, why: str) -> None:
    """Refuse, in one line, any of the options ``names`` (dests) written in the line: ``why``
    says what they go with (``"--sparsity goes with wanda and magnitude"``-style tail)."""
    written = [name for name in names if name in args.options_given]
    if written:
        raise UsageError(f"--{written[0].replace('_', '-')} {why}")


def integer(text: str) -> int:
    """The type of every whole-number option: ASCII digits 0-9 with an optional sign. Python's
    ``int`` also reads other scripts' digits (Arabic-Indic three), which --heads, --spans and the
    ranges refuse: one rule for every whole number a magic reads."""
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"invalid int value {text!r}: write whole numbers with the digits 0-9")
    return int(text)


def check_output_name(shell, name: str | None, option: str = "-o") -> None:
    """Refuse, in one line, an output variable name that is not a Python name (keywords are
    identifiers to ``str.isidentifier``) or that holds the loaded model: storing a result
    there would drop the user's handle on it silently."""
    if name is None:
        return
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"{option} needs a Python variable name: {name!r} is not a valid Python name.")
    if isinstance(shell.user_ns.get(name), Subject):
        raise UsageError(f"{option} {name}: {name!r} holds the loaded model; pick another name for the result.")


def one_line_errors(magic):
    """Turn engine errors into IPython's one-line UsageError (the cell still fails), and
    show engine warnings as one line each. Other libraries' warnings are re-emitted once,
    after the recording block has closed: re-emitting inside it would append to the list
    being walked and never end."""

    @functools.wraps(magic)
    def wrapper(*args, **kwargs):
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as recorded:
                warnings.simplefilter("always", NeuroMagicsWarning)
                try:
                    return magic(*args, **kwargs)
                except NeuroMagicsError as error:
                    raise UsageError(str(error)) from None
                finally:
                    caught = list(recorded)
        finally:
            _show_warnings(caught)

    return wrapper


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Ours as one printed line each; any other library's through the warnings machinery
    (so the user's filters apply and each shows once)."""
    for warning in caught:
        if issubclass(warning.category, NeuroMagicsWarning):
            print(f"Warning: {warning.message}")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno,
                                   source=warning.source)


def check_positive(args, *names: str) -> None:
    """Refuse, in one line, any of the named integer options below 1."""
    for name in names:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)}).")


def worker_options(what: str):
    """The ``--workers N`` / ``--ray-address ADDR`` pair of a magic whose ``what`` runs on Ray
    workers (the engine checks them before any work)."""

    def add(magic):
        magic = argument("--ray-address", default=None, metavar="ADDR",
                         help="Join the Ray cluster at ADDR with --workers (default: start a local one).")(magic)
        return argument("--workers", type=integer, default=None, metavar="N",
                        help=f"Run {what} on N Ray workers, each with its own copy of the model (one GPU each for a "
                             "CUDA model); same numbers. Needs pip install 'neuro-magics[distributed]'.")(magic)

    return add


def print_active(subject, kind: str, plural: str) -> None:
    """List the active interventions of one kind (``%ablate --list``, ``%edit --list``, ...)."""
    active = active_interventions(subject, kind)
    if not active:
        print(f"No active {plural}.")
    for number, intervention in enumerate(active, 1):
        print(f"{number}. {intervention.description}")
