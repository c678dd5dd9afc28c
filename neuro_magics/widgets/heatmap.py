"""A canvas heatmap over (metric, row, col) arrays: layer x token scans, brain scans, patching maps."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget

SCALES = ("sequential", "diverging")
METRIC_KEYS = {"name", "label", "scale", "center", "fmt", "vmin", "vmax", "clip", "log", "better"}


def _metric(spec: Mapping | str, position: int) -> dict:
    """Normalise one metric description, filling defaults so the front end never guesses."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    unknown = set(spec) - METRIC_KEYS
    if unknown:
        raise WidgetDataError(f"metric {position} has unknown keys {sorted(unknown)}; allowed: {sorted(METRIC_KEYS)}")
    if not spec.get("name"):
        raise WidgetDataError(f"metric {position} needs a non-empty 'name'")
    scale = spec.get("scale", "sequential")
    if scale not in SCALES:
        raise WidgetDataError(f"metric {spec['name']!r}: scale must be one of {SCALES}, got {scale!r}")
    clip = spec.get("clip")
    if clip is not None and not 0.5 < float(clip) <= 1.0:
        raise WidgetDataError(f"metric {spec['name']!r}: clip is the quantile the colours stop at, in (0.5, 1]; got {clip!r}")
    if spec.get("log") and (scale == "diverging" or clip is not None):
        raise WidgetDataError(f"metric {spec['name']!r}: a log colour scale is sequential and needs no clip")
    better = spec.get("better")
    if better not in (None, "higher", "lower"):
        raise WidgetDataError(f"metric {spec['name']!r}: better must be 'higher', 'lower' or None, got {better!r}")
    center = spec.get("center")
    if scale == "diverging" and center is None:
        center = 0.0
    return {
        "name": str(spec["name"]),
        "label": str(spec.get("label") or spec["name"]),
        "scale": scale,
        "center": None if center is None else float(center),
        "fmt": str(spec.get("fmt", ".4g")),
        "vmin": None if spec.get("vmin") is None else float(spec["vmin"]),
        "vmax": None if spec.get("vmax") is None else float(spec["vmax"]),
        "clip": None if clip is None else float(clip),
        "log": bool(spec.get("log", False)),
        "better": better,
    }


def _compact_vocab(token_ids: np.ndarray, vocab: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Keep only the vocabulary entries the ids use, so a full tokenizer vocab costs nothing extra."""
    ids = np.asarray(token_ids)
    if ids.dtype.kind not in "iu":
        raise WidgetDataError(f"detail_token_ids must hold integers, got dtype {ids.dtype}")
    valid = ids >= 0  # negative ids pad cells that have fewer than k tokens
    if valid.any() and int(ids[valid].max()) >= len(vocab):
        raise WidgetDataError(f"detail_token_ids refer to id {int(ids[valid].max())} but detail_vocab has {len(vocab)} entries")
    used, inverse = np.unique(ids[valid], return_inverse=True)
    compact = np.full(ids.shape, -1, dtype=np.int32)
    compact[valid] = inverse
    return compact, [str(vocab[i]) for i in used]


class HeatmapWidget(StrictAnyWidget):
    """Heatmap of ``values[metric, row, col]`` with a metric selector, exact-value tooltips and click-to-select.

    ``selected`` is ``[row, col]`` of the clicked cell (``[]`` when none) and syncs back to Python,
    so callers can ``widget.observe(callback, names="selected")``.
    """

    _esm = pathlib.Path(__file__).parent.parent / "static" / "heatmap.js"

    values = NDArray("float32", 3)
    metrics = traitlets.List(traitlets.Dict()).tag(sync=True)
    metric = traitlets.Unicode("").tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    col_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    row_title = traitlets.Unicode("").tag(sync=True)
    col_title = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    marks = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.List(traitlets.Int(), maxlen=2).tag(sync=True)
    detail_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    detail_values = NDArray("float32", 3, allow_none=True)
    detail_token_ids = NDArray("int32", 3, allow_none=True)
    detail_probs = NDArray("float16", 3, allow_none=True)
    detail_vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tooltip_template = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        values: np.ndarray,
        metrics: Sequence[Mapping | str] | None = None,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        *,
        row_title: str = "",
        col_title: str = "",
        title: str = "",
        marks: Sequence[Mapping] = (),
        metric: str | None = None,
        selected: Sequence[int] = (),
        details: Mapping[str, np.ndarray] | None = None,
        detail_token_ids: np.ndarray | None = None,
        detail_probs: np.ndarray | None = None,
        detail_vocab: Sequence[str] | None = None,
        tooltip_template: str = "",
        **kwargs,
    ):
        """
        values: [n_metrics, n_rows, n_cols] (a 2-D array is one metric); NaN marks undefined cells.
        metrics: one dict per metric: name, label, scale ("sequential" | "diverging"), center, fmt, vmin, vmax,
            clip (a quantile in (0.5, 1]: colours span the middle values, so a few huge ones do not flatten the rest),
            log (colours follow log10 of the values: a sink 25x the rest keeps the others readable),
            better ("higher" | "lower": the legend says which way is good).
        details: extra per-cell numbers {name: [n_rows, n_cols]} shown in the tooltip and usable in
            ``tooltip_template``, e.g. "config ({row_index}, {col_index}) · block {block_size:d} · Δ {delta:+.3f}".
        detail_token_ids / detail_probs: [n_rows, n_cols, k] top-k tokens per cell (ids into detail_vocab; -1 pads).
        """
        values = np.asarray(values)
        if values.ndim == 2:
            values = values[None]
        if values.ndim != 3:
            raise WidgetDataError(f"values must be [n_metrics, n_rows, n_cols], got shape {values.shape}")
        n_metrics, n_rows, n_cols = values.shape
        metrics = [_metric(spec, i) for i, spec in enumerate(metrics or [f"metric {i}" for i in range(n_metrics)])]
        detail_names = list(details or {})
        detail_values = np.stack([np.asarray(details[name], dtype=np.float32) for name in detail_names]) if detail_names else None
        if detail_token_ids is not None:
            if detail_vocab is None:
                raise WidgetDataError("detail_token_ids needs detail_vocab (the token strings the ids index)")
            detail_token_ids, detail_vocab = _compact_vocab(detail_token_ids, detail_vocab)
        super().__init__(
            values=values,
            metrics=metrics,
            metric=metric if metric is not None else metrics[0]["name"] if metrics else "",
            row_labels=[str(x) for x in row_labels] if row_labels is not None else [str(i) for i in range(n_rows)],
            col_labels=[str(x) for x in col_labels] if col_labels is not None else [str(i) for i in range(n_cols)],
            row_title=row_title,
            col_title=col_title,
            title=title,
            marks=[dict(mark) for mark in marks],
            selected=list(selected),
            detail_names=detail_names,
            detail_values=detail_values,
            detail_token_ids=detail_token_ids,
            detail_probs=detail_probs,
            detail_vocab=list(detail_vocab or []),
            tooltip_template=tooltip_template,
            **kwargs,
        )

        self._choose_callbacks: list[Callable[[int, int], None]] = []
        self.on_msg(self._message)

    def on_choose(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(row, col)`` when a cell is chosen: clicked, or Enter on the cell the
        arrow keys moved to (arrows alone only preview, so they never start work)."""
        self._choose_callbacks.append(callback)

    def _message(self, _widget, content: dict, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "choose":
            for callback in self._choose_callbacks:
                callback(int(content["row"]), int(content["col"]))

    @property
    def grid_shape(self) -> tuple[int, int]:
        return tuple(self.values.shape[1:])

    def __repr__(self) -> str:
        """Short and stable (no ids or array dumps), so notebook outputs compare across runs."""
        names = [m["name"] for m in self.metrics]
        return f"HeatmapWidget(title={self.title!r}, metrics={names}, rows={self.grid_shape[0]}, cols={self.grid_shape[1]})"

    # Cross-validation: traitlets defers these to the end of __init__ (and of any
    # ``with widget.hold_trait_notifications():`` block), so related traits may change together.

    @traitlets.validate("metrics")
    def _check_metrics(self, proposal):
        metrics = [_metric(spec, i) for i, spec in enumerate(proposal["value"])]
        if self.values is not None and len(metrics) != self.values.shape[0]:
            raise WidgetDataError(f"{len(metrics)} metrics given for values with {self.values.shape[0]} metric planes")
        if len({m["name"] for m in metrics}) != len(metrics):
            raise WidgetDataError("metric names must be unique")
        return metrics

    @traitlets.validate("metric")
    def _check_metric(self, proposal):
        names = [m["name"] for m in self.metrics]
        if names and proposal["value"] not in names:
            raise WidgetDataError(f"metric {proposal['value']!r} is not one of {names}")
        return proposal["value"]

    @traitlets.validate("row_labels", "col_labels")
    def _check_labels(self, proposal):
        axis = 1 if proposal["trait"].name == "row_labels" else 2
        expected = self.values.shape[axis] if self.values is not None else None
        if expected is not None and len(proposal["value"]) != expected:
            raise WidgetDataError(f"{proposal['trait'].name} has {len(proposal['value'])} entries, values has {expected} {'rows' if axis == 1 else 'columns'}")
        return proposal["value"]

    @traitlets.validate("values")
    def _check_values(self, proposal):
        values = proposal["value"]
        if 0 in values.shape:
            raise WidgetDataError(f"values must not be empty, got shape {values.shape}")
        n_metrics, n_rows, n_cols = values.shape
        # The traits sized by the grid must already agree (inside a hold block they are set first).
        if len(self.metrics) not in (0, n_metrics):
            raise WidgetDataError(f"{len(self.metrics)} metrics given for values with {n_metrics} metric planes")
        for name, expected, unit in (("row_labels", n_rows, "rows"), ("col_labels", n_cols, "columns")):
            if len(getattr(self, name)) not in (0, expected):
                raise WidgetDataError(f"{name} has {len(getattr(self, name))} entries, values has {expected} {unit}")
        if self.detail_values is not None and self.detail_values.shape[1:] != (n_rows, n_cols):
            raise WidgetDataError(f"details must each be {(n_rows, n_cols)} like the grid, got {self.detail_values.shape[1:]}")
        for name in ("detail_token_ids", "detail_probs"):
            array = getattr(self, name)
            if array is not None and array.shape[:2] != (n_rows, n_cols):
                raise WidgetDataError(f"{name} must be [n_rows, n_cols, k] = {(n_rows, n_cols)} x k, got {array.shape}")
        return values

    @traitlets.validate("selected")
    def _check_selected(self, proposal):
        selected = list(proposal["value"])
        if selected and (len(selected) != 2 or not all(0 <= i < n for i, n in zip(selected, self.grid_shape))):
            raise WidgetDataError(f"selected must be [] or [row, col] inside the {self.grid_shape} grid, got {selected}")
        return selected

    @traitlets.validate("marks")
    def _check_marks(self, proposal):
        marks = []
        for mark in proposal["value"]:
            if not {"row", "col"} <= set(mark):
                raise WidgetDataError(f"each mark needs 'row' and 'col' (and a 'label'), got {mark}")
            row, col = int(mark["row"]), int(mark["col"])
            if not (0 <= row < self.grid_shape[0] and 0 <= col < self.grid_shape[1]):
                raise WidgetDataError(f"mark {mark} lies outside the {self.grid_shape} grid")
            marks.append({"row": row, "col": col, "label": str(mark.get("label", ""))})
        return marks

    @traitlets.validate("detail_values")
    def _check_detail_values(self, proposal):
        details = proposal["value"]
        if details is not None:
            if details.shape[1:] != self.grid_shape:
                raise WidgetDataError(f"details must each be {self.grid_shape} like the grid, got {details.shape[1:]}")
            if details.shape[0] != len(self.detail_names):
                raise WidgetDataError(f"{details.shape[0]} detail planes for {len(self.detail_names)} detail_names")
        return details

    @traitlets.validate("detail_token_ids", "detail_probs")
    def _check_topk(self, proposal):
        array = proposal["value"]
        if array is not None and array.shape[:2] != self.grid_shape:
            raise WidgetDataError(f"{proposal['trait'].name} must be [n_rows, n_cols, k] = {self.grid_shape} x k, got {array.shape}")
        ids, probs = (array, self.detail_probs) if proposal["trait"].name == "detail_token_ids" else (self.detail_token_ids, array)
        if ids is not None and probs is not None and ids.shape != probs.shape:
            raise WidgetDataError(f"detail_token_ids and detail_probs must have the same shape, got {ids.shape} and {probs.shape}")
        return array
