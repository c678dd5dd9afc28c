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
    if getattr(ipython, "neuro_magics_cell_lock", None) is None:
        ipython.neuro_magics_cell_lock = CellLock(ipython.neuro_magics_session)
        ipython.events.register("pre_run_cell", ipython.neuro_magics_cell_lock.acquire)
        ipython.events.register("post_run_cell", ipython.neuro_magics_cell_lock.release)


class CellLock:
    """Holds the loaded model's lock for the whole of every cell, so that a widget action (a
    brain-scan click, handled on another thread by ipykernel 7) waits, shown as "queued", until
    the running cell ends instead of changing the model between two of its lines."""

    def __init__(self, session: Session):
        self.session = session
        self.held: list = []

    def acquire(self, _info=None) -> None:
        self.release()  # a cell whose post_run_cell never came must not keep the lock
        subject = self.session.subject
        if subject is not None:
            subject.lock.acquire()
            self.held.append(subject)

    def release(self, _result=None) -> None:
        while self.held:
            self.held.pop().lock.release()


def unload_ipython_extension(ipython) -> None:
    """Remove our magics; the loaded model stays in the session for a later reload."""
    cell_lock = getattr(ipython, "neuro_magics_cell_lock", None)
    if cell_lock is not None:
        ipython.events.unregister("pre_run_cell", cell_lock.acquire)
        ipython.events.unregister("post_run_cell", cell_lock.release)
        ipython.neuro_magics_cell_lock = None
    manager = ipython.magics_manager
    for magic_class in magic_classes():
        for kind, names in magic_class.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(magic_class.__name__, None)
