"""anywidget components; they take plain arrays and strings, never engine objects."""

from ._arrays import WidgetDataError
from .attention import AttentionWidget
from .heatmap import HeatmapWidget

__all__ = ["AttentionWidget", "HeatmapWidget", "WidgetDataError"]
