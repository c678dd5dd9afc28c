"""Errors a user can act on: one line that says what went wrong and what to do.

The engine raises these; the magics turn them into one-line notebook messages.
"""

from __future__ import annotations


class NeuroMagicsError(Exception):
    """A problem with the user's input or environment, stated in one actionable line.

    Jupyter shows a full traceback for ordinary exceptions; `_render_traceback_`
    keeps the cell failed but shows only the message.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ModelLoadError(NeuroMagicsError):
    """The model could not be found, loaded or placed where asked."""


class UnsupportedArchitectureError(NeuroMagicsError):
    """The model's architecture has no adapter yet."""


class ProgramError(NeuroMagicsError):
    """A layer program is malformed or out of range for the model."""


class NoModelError(NeuroMagicsError):
    """An operation needs a loaded model and none is loaded."""


class NeuroMagicsWarning(UserWarning):
    """Something the user should know that does not stop the work (one line; the magics
    print it as such)."""


#: Seeds reach numpy's RandomState (scikit-learn, UMAP, t-SNE, FastICA), which takes 0 to 2**32 - 1.
SEED_LIMIT = 2**32


def check_seed(seed: object, limit: int = SEED_LIMIT) -> None:
    """Refuse, before any work, a seed the random generators behind it would reject only
    after the long part (UMAP raises on a negative seed after the activations are read)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < limit:
        raise NeuroMagicsError(f"--seed must be a whole number from 0 to {limit - 1} (got {seed!r}).")
