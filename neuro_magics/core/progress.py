"""Progress bars for long engine work, drawn by whichever front end is active.

The engine only says what runs (total, description, unit) and reports steps; it never
imports a notebook library. By default a bar is tqdm's text bar on stderr. In a notebook
the package installs a renderer that draws plain HTML updated in place (``set_renderer``),
so a saved notebook holds no widget reference that dies on reload. A widget action can
also ``observe`` the bars of the work it starts, to show their progress inside itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Bar(Protocol):
    """What the engine calls on a bar."""

    def update(self, n: int = 1) -> None: ...

    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...

    def set_description(self, desc: str, refresh: bool = True) -> None: ...

    def close(self) -> None: ...


Renderer = Callable[[int, str, str, bool], Bar]
"""``renderer(total, desc, unit, leave)`` -> a bar."""

Observer = Callable[[str, int, int, float], None]
"""``observer(desc, done, total, elapsed_seconds)`` after every step."""

_renderer: Renderer | None = None
_observer: contextvars.ContextVar[Observer | None] = contextvars.ContextVar("neuro_magics_progress", default=None)


def set_renderer(renderer: Renderer | None) -> Renderer | None:
    """Install how bars are drawn (``None``: tqdm's text bar); returns the previous renderer."""
    global _renderer
    previous, _renderer = _renderer, renderer
    return previous


@contextmanager
def observe(observer: Observer) -> Iterator[None]:
    """Report every bar started inside this block (in this thread) to ``observer`` instead
    of drawing it: a widget shows the progress of the work its click started."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


class ProgressBar:
    """One bar: counts steps, forwards them to the renderer's bar or to an observer."""

    def __init__(self, total: int, desc: str, unit: str = "it", *, enabled: bool = True, leave: bool = True):
        self.total, self.desc, self.unit, self.n = int(total), desc, unit, 0
        self._started = time.perf_counter()
        self._observer = _observer.get() if enabled else None
        self._bar: Bar | None = None
        if enabled and self._observer is None:
            self._bar = (_renderer or _text_bar)(self.total, desc, unit, leave)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        if self._observer is not None:
            self._observer(self.desc, self.n, self.total, time.perf_counter() - self._started)

    def set_description(self, desc: str) -> None:
        """Say what runs now (e.g. "UMAP layer 12"); observers get it with the next step."""
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc, refresh=True)

    def set_postfix(self, text: str) -> None:
        """A short note after the meter (e.g. "12/465 configs"), shown at the next redraw."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _text_bar(total: int, desc: str, unit: str, leave: bool) -> Bar:
    from tqdm.std import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


@contextlib.contextmanager
def transformers_bars() -> Iterator[None]:
    """Transformers' own bars ("Loading weights", "Writing model shards") drawn as ours inside
    this block: its notebook bars are widgets that a saved notebook cannot show after a reload,
    and a text bar on stderr is a red box in JupyterLab. Hub download bars are untouched."""
    from transformers.utils import logging

    set_hook = getattr(logging, "set_tqdm_hook", None)
    if set_hook is None:
        yield
        return

    def as_ours(factory, args, kwargs):
        if factory is not logging.tqdm_lib.tqdm:  # bars are off: keep them off
            return factory(*args, **kwargs)
        return _TqdmLike(*args, **kwargs)

    previous = set_hook(as_ours)
    try:
        yield
    finally:
        set_hook(previous)


class _TqdmLike:
    """The part of tqdm's interface transformers uses, on a ProgressBar (leave=False)."""

    def __init__(self, iterable=None, desc: str | None = None, total: int | None = None, unit: str = "it",
                 disable: bool = False, **_ignored):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.bar = ProgressBar(total or 0, desc or "", unit, enabled=not disable, leave=False)

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.bar.update()
        finally:
            self.bar.close()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.bar.set_postfix(text)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> _TqdmLike:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None  # refresh, set_description, ...: nothing to draw
