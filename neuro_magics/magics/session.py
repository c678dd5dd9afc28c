"""What the magics share within one IPython shell: the loaded model, and error handling."""

from __future__ import annotations

import functools

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from ..core.errors import NeuroMagicsError, NoModelError
from ..core.subject import Subject


class Session:
    """The model the magics act on (one per shell)."""

    def __init__(self) -> None:
        self.subject: Subject | None = None

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


def one_line_errors(magic):
    """Turn engine errors into IPython's one-line UsageError (the cell still fails)."""

    @functools.wraps(magic)
    def wrapper(*args, **kwargs):
        try:
            return magic(*args, **kwargs)
        except NeuroMagicsError as error:
            raise UsageError(str(error)) from None

    return wrapper
