"""A small line chart over layers: probe accuracy against its control, cosines by layer."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget


class LinesWidget(StrictAnyWidget):
    """``values[series, x]`` as lines (NaN breaks a line); hover shows every series' exact value at
    an x, a click sets ``selected`` to that x's index."""

    _esm = pathlib.Path(__file__).parent.parent / "static" / "lines.js"

    values = NDArray("float32", 2)
    series = traitlets.List(traitlets.Unicode()).tag(sync=True)
    x_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    x_title = traitlets.Unicode("").tag(sync=True)
    y_title = traitlets.Unicode("").tag(sync=True)
    y_range = traitlets.List(traitlets.Float(), maxlen=2).tag(sync=True)
    dashed = traitlets.List(traitlets.Bool()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)

    def __init__(
        self,
        values: np.ndarray,
        series: Sequence[str],
        x_labels: Sequence[str],
        *,
        x_title: str = "",
        y_title: str = "",
        y_range: Sequence[float] = (),
        dashed: Sequence[bool] = (),
        title: str = "",
        **kwargs,
    ):
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(series) or values.shape[1] != len(x_labels):
            raise WidgetDataError(f"values must be [{len(series)} series, {len(x_labels)} x], got {values.shape}")
        super().__init__(values=values, series=[str(s) for s in series], x_labels=[str(x) for x in x_labels],
                         x_title=x_title, y_title=y_title, y_range=[float(y) for y in y_range],
                         dashed=list(dashed) or [False] * len(series), title=title, **kwargs)
