"""anywidget components; they take plain arrays and strings, never engine objects."""

from ._arrays import WidgetDataError
from .attention import AttentionWidget
from .attribution import AttributionWidget
from .diff import DiffWidget
from .heatmap import HeatmapWidget

__all__ = ["AttentionWidget", "AttributionWidget", "DiffWidget", "HeatmapWidget", "WidgetDataError"]
