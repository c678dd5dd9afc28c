"""anywidget components; they take plain arrays and strings, never engine objects."""

from ._arrays import WidgetDataError
from .attention import AttentionWidget
from .attribution import AttributionWidget
from .diff import DiffWidget
from .heatmap import HeatmapWidget

#: The modules that register views per result kind on import (``core.results.register_view``).
VIEW_MODULES = ("views", "figures", "checkup", "standalone")

__all__ = ["AttentionWidget", "AttributionWidget", "DiffWidget", "HeatmapWidget", "WidgetDataError"]
