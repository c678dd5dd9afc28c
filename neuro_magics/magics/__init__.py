"""IPython glue: parse, validate, call the engine, return a result whose repr shows it.

One module per group of magics; each registers a ``Magics`` class sharing one
``Session`` (the currently loaded model) per IPython shell.
"""

from __future__ import annotations

from .session import Session
from .model import ModelMagics

MAGIC_CLASSES = (ModelMagics,)


def load_ipython_extension(ipython) -> None:
    if getattr(ipython, "neuro_magics_session", None) is None:
        ipython.neuro_magics_session = Session()
    for magic_class in MAGIC_CLASSES:
        ipython.register_magics(magic_class(ipython, ipython.neuro_magics_session))


def unload_ipython_extension(ipython) -> None:
    """Remove our magics; the loaded model stays in the session for a later reload."""
    manager = ipython.magics_manager
    for magic_class in MAGIC_CLASSES:
        for kind, names in magic_class.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(magic_class.__name__, None)
