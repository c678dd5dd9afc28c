"""The brain-scan view: the delta heatmap, a toggle to its cheap proxies, and an output
area for what clicking a configuration does (apply it and show the before/after diff).

Composed from the generic HeatmapWidget in an ipywidgets container; the toggle is linked
in the browser (``jslink``), so a saved notebook still switches views without a kernel.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets
import numpy as np
from IPython.display import display

from .heatmap import HeatmapWidget

_VIEWS = ("brain scan", "proxies")


class BrainScanWidget(ipywidgets.VBox):
    """Δ score per duplication config (i, j): rows are the start i, columns the end j.

    ``on_select(i, j, report, show)`` runs when a cell above the diagonal is chosen;
    ``report(text)`` shows its progress in the status line, ``show(widget)`` displays a widget
    in ``output`` at once (a diff that fills in as it streams), and what it returns is kept
    in ``diff`` and displayed unless it showed something already (the brain scan passes
    "apply this config and diff it against the original").
    """

    def __init__(
        self,
        delta: np.ndarray,
        scores: np.ndarray,
        baseline: float,
        block_influence: np.ndarray,
        angular_distance: np.ndarray,
        *,
        best: Sequence[tuple[int, int]] = (),
        title: str = "",
        on_select: Callable[[int, int, Callable[[str], None], Callable[[Any], None]], Any] | None = None,
    ):
        size = delta.shape[0]
        labels = [str(k) for k in range(size)]
        starts, ends = np.indices((size, size))
        block_size = np.where(ends >= starts, ends - starts, np.nan)
        marks = [{"row": 0, "col": 0, "label": f"baseline {baseline:.4f} (i = j duplicates nothing)"}]
        marks += [{"row": i, "col": j, "label": "best"} for i, j in best]
        self.sweep = HeatmapWidget(
            np.stack([delta, scores]).astype(np.float32),
            metrics=[
                {"name": "delta", "label": "Δ score vs baseline", "scale": "diverging", "center": 0.0, "fmt": "+.4f"},
                {"name": "score", "label": "score", "fmt": ".4f"},
            ],
            row_labels=labels, col_labels=labels, row_title="start i", col_title="end j", title=title,
            marks=marks,
            details={"block_size": block_size},
            tooltip_template="duplicate {row}:{col} · block of {block_size:d} · score {score:.4f} · Δ {delta:+.4f}",
        )
        upper = np.where(ends >= starts, angular_distance, np.nan)
        self.influence = HeatmapWidget(
            np.asarray(block_influence, dtype=np.float32)[None, None],
            metrics=[{"name": "block_influence", "label": "Block Influence 1 - cos(x_l, x_l+1)", "fmt": ".4f"}],
            row_labels=["BI"], col_labels=[str(k) for k in range(size - 1)], col_title="layer",
            title="Block Influence per layer (low: the layer barely changes the stream)",
        )
        self.angular = HeatmapWidget(
            upper.astype(np.float32)[None],
            metrics=[{"name": "angular_distance", "label": "angular distance d(i, j)", "fmt": ".4f"}],
            row_labels=labels, col_labels=labels, row_title="layer i", col_title="layer j",
            title="Angular distance between the inputs of layers i and j (small: block i:j is cheap to repeat or drop)",
            tooltip_template="d(x_{row}, x_{col}) = {angular_distance:.4f}",
        )
        self.view = ipywidgets.ToggleButtons(options=_VIEWS, value=_VIEWS[0])
        self.pages = ipywidgets.Stack(
            [self.sweep, ipywidgets.VBox([self.influence, self.angular])], selected_index=0
        )
        ipywidgets.jslink((self.view, "index"), (self.pages, "selected_index"))
        hint = ("click a cell above the diagonal (or move with the arrow keys and press Enter) to apply that "
                "config and diff it against the original model" if on_select is not None else
                "no model is attached to this scan: result.apply(i, j, subject=m) applies a config")
        self.status = ipywidgets.HTML(_status_html(hint))
        self.output = ipywidgets.Output(layout=ipywidgets.Layout(min_height="2em"))
        self.on_select = on_select
        self.diff: Any = None  # what the last chosen config's action returned (shown below)
        self.sweep.on_choose(self._chosen)
        super().__init__([self.view, self.pages, self.status, self.output])

    def report(self, text: str) -> None:
        """Show what the click is doing (queued, per-token progress, applied) above its diff."""
        self.status.value = _status_html(text)

    def _chosen(self, i: int, j: int) -> None:
        if i >= j:  # the model and the diff shown stay as they are
            self.report(f"({i}, {j}) duplicates nothing: choose a cell above the diagonal (start i < end j); "
                        "the model is unchanged.")
            return
        if self.on_select is None:
            self.report(f"duplicate {i}:{j}: no model is attached to this scan; "
                        f"result.apply({i}, {j}, subject=m) applies it.")
            return
        shown = []

        def show(widget: Any) -> None:
            shown.append(widget)
            with self.output:
                self.output.clear_output(wait=True)
                display(widget)

        try:
            diff = self.on_select(i, j, self.report, show)
        except Exception as error:  # a click has no cell to fail: show the problem here
            self.report(f"{type(error).__name__}: {error}")
            return
        self.diff = diff
        if not shown:
            show(diff)


def _status_html(text: str) -> str:
    return f'<div class="neuro-magics-status" style="font-size:12px;opacity:0.85">{html.escape(text)}</div>'
