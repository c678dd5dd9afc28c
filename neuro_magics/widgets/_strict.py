"""The base of our anywidgets: a keyword argument that names no trait is an error.

traitlets only warns (a DeprecationWarning, hidden by default) and drops the argument, so
``HeatmapWidget(values, titel="x")`` would draw a widget without its title. lonboard rejects
unknown arguments the same way.
"""

from __future__ import annotations

from typing import Any

import anywidget


class StrictAnyWidget(anywidget.AnyWidget):
    """An ``AnyWidget`` that raises ``TypeError`` on keyword arguments that are not its traits."""

    def __init__(self, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(self.class_trait_names()))
        if unknown:
            known = sorted(name for name in self.class_trait_names(sync=True) if not name.startswith("_"))
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"its traits are {', '.join(known)}"
            )
        super().__init__(**kwargs)
