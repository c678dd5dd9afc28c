"""IPython glue: parse, validate, call the engine, return a result whose repr shows it.

One module per group of magics. Each module lists its ``Magics`` classes in
``MAGICS``; they are found here automatically and share one ``Session`` (the loaded
model) per IPython shell.
"""

from __future__ import annotations

import importlib
import pkgutil

from .session import Session


def magic_classes() -> list[type]:
    classes = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "session":
            classes.extend(getattr(importlib.import_module(f"{__name__}.{module.name}"), "MAGICS", ()))
    return classes


def load_ipython_extension(ipython) -> None:
    if getattr(ipython, "neuro_magics_session", None) is None:
        ipython.neuro_magics_session = Session()
    for magic_class in magic_classes():
        ipython.register_magics(magic_class(ipython, ipython.neuro_magics_session))


def unload_ipython_extension(ipython) -> None:
    """Remove our magics; the loaded model stays in the session for a later reload."""
    manager = ipython.magics_manager
    for magic_class in magic_classes():
        for kind, names in magic_class.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(magic_class.__name__, None)
