"""A canvas scatter of the same points at several layers: projections of activations.

Points are drawn as pixels (100k redraw in milliseconds); a slider steps through layers;
hovering shows a point's token in its context, its label and layer; dragging a box selects
points, whose indices come back to Python in ``selected``. The wheel zooms and shift-drag pans
(the front end only), a search box rings a token's points, and a click lists the clicked point's
nearest neighbours in the 2-D map.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget

KINDS = ("category", "number")


class ScatterWidget(StrictAnyWidget):
    """``coords[layer, point, 2]`` (sent scaled to [-1, 1] per layer); ``colorings`` are the ways to colour points, each a dict with
    ``name``, ``kind`` ("category": integer codes into ``categories``, -1 for none; "number") and
    ``values`` (``[points]``, or ``[layers, points]`` when it differs per layer, as clusters do).
    ``selected`` (point indices) and ``layer`` (an index into the layers) sync back to Python."""

    _esm = pathlib.Path(__file__).parent.parent / "static" / "scatter.js"

    coords = NDArray("float16", 3)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    colorings = traitlets.List(traitlets.Dict()).tag(sync=True)
    color_values = NDArray("float32", 2, allow_none=True)
    color_by = traitlets.Unicode("").tag(sync=True)
    point_text = NDArray("int32", 1)
    point_position = NDArray("int32", 1)
    token_codes = NDArray("int32", 1)
    token_vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    texts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    text_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    axis_titles = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(
        self,
        coords: np.ndarray,
        *,
        layer_labels: Sequence[str] | None = None,
        colorings: Sequence[Mapping] = (),
        color_by: str | None = None,
        point_text: np.ndarray | None = None,
        point_position: np.ndarray | None = None,
        point_tokens: Sequence[str] | None = None,
        texts: Sequence[str] = (),
        text_labels: Sequence[str] = (),
        axis_titles: Sequence[Sequence[str]] = (),
        title: str = "",
        layer: int = 0,
        **kwargs,
    ):
        """
        coords: [layers, points, 2] (a 2-D array is one layer).
        point_text / point_position: where each point comes from (position -1: a whole text).
        point_tokens: each point's token (or text), shown on hover with its neighbours of the same text.
        axis_titles: [layers][x title, y title], so a reader knows what the axes mean at each layer.
        """
        coords = np.asarray(coords, dtype=np.float64)
        if coords.ndim == 2:
            coords = coords[None]
        if coords.ndim != 3 or coords.shape[2] != 2:
            raise WidgetDataError(f"coords must be [layers, points, 2], got shape {coords.shape}")
        if not np.isfinite(coords).all():
            raise WidgetDataError("coords must be finite")
        n_layers, n_points = coords.shape[:2]
        specs, rows = [], []
        for position, coloring in enumerate(colorings):
            spec, values = _coloring(coloring, position, n_layers, n_points)
            specs.append({**spec, "row": sum(len(r) for r in rows)})
            rows.append(values)
        if color_by is not None and color_by not in {s["name"] for s in specs}:
            raise WidgetDataError(f"color_by {color_by!r} names no colouring; have {[s['name'] for s in specs]}")
        tokens = list(point_tokens) if point_tokens is not None else [""] * n_points
        if len(tokens) != n_points:
            raise WidgetDataError(f"point_tokens has {len(tokens)} entries for {n_points} points")
        vocab, codes = np.unique(np.asarray(tokens, dtype=object).astype(str), return_inverse=True)
        titles = [[str(t) for t in pair] for pair in axis_titles]
        if titles and (len(titles) != n_layers or any(len(pair) != 2 for pair in titles)):
            raise WidgetDataError(f"axis_titles must be [{n_layers} layers][x title, y title]")
        if not 0 <= layer < n_layers:
            raise WidgetDataError(f"layer {layer} is outside 0-{n_layers - 1}")
        super().__init__(
            coords=_unit_scale(coords),
            layer_labels=[str(x) for x in (layer_labels or range(n_layers))],
            colorings=specs,
            color_values=np.concatenate(rows) if rows else None,
            color_by=color_by or (specs[0]["name"] if specs else ""),
            point_text=np.zeros(n_points, np.int32) if point_text is None else point_text,
            point_position=np.full(n_points, -1, np.int32) if point_position is None else point_position,
            token_codes=codes.astype(np.int32),
            token_vocab=[str(v) for v in vocab],
            texts=[str(t) for t in texts],
            text_labels=[str(t) for t in text_labels],
            axis_titles=titles,
            title=title,
            layer=layer,
            **kwargs,
        )


def _unit_scale(coords: np.ndarray) -> np.ndarray:
    """Each layer centred and scaled (both axes alike) into [-1, 1], as float16: the drawing fits
    each layer to the canvas anyway, and half the bytes cross to the browser (and into a saved
    notebook); float16 keeps about 1/2000 of the range, under a pixel of a 720 px map."""
    centre = (coords.max(1, keepdims=True) + coords.min(1, keepdims=True)) / 2
    spread = np.abs(coords - centre).max(axis=(1, 2), keepdims=True)
    return ((coords - centre) / np.where(spread > 0, spread, 1.0)).astype(np.float16)


def _coloring(coloring: Mapping, position: int, n_layers: int, n_points: int) -> tuple[dict, np.ndarray]:
    unknown = set(coloring) - {"name", "kind", "values", "categories"}
    if unknown:
        raise WidgetDataError(f"colouring {position} has unknown keys {sorted(unknown)}")
    name, kind = str(coloring.get("name", "")), coloring.get("kind", "category")
    if not name or kind not in KINDS:
        raise WidgetDataError(f"colouring {position} needs a name and a kind in {KINDS}")
    values = np.asarray(coloring["values"], dtype=np.float32)
    per_layer = values.ndim == 2
    if values.shape not in ((n_points,), (n_layers, n_points)):
        raise WidgetDataError(f"colouring {name!r}: values must be [{n_points}] or [{n_layers}, {n_points}], "
                              f"got {values.shape}")
    spec = {"name": name, "kind": kind, "per_layer": per_layer,
            "categories": [str(c) for c in coloring.get("categories", ())]}
    return spec, values if per_layer else values[None]
