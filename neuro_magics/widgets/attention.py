"""Attention explorer: every (layer, head) pattern as a thumbnail, zoom into one head."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget


class AttentionWidget(StrictAnyWidget):
    """Small multiples of ``patterns[layer, head, query, key]``, coloured / ranked by a head score.

    ``selected`` is ``[layer, head]`` of the clicked head (``[]`` when none) and syncs back to
    Python; ``layer_range`` (inclusive ``[first, last]``) and ``score`` sync both ways too.
    """

    _esm = pathlib.Path(__file__).parent.parent / "static" / "attention.js"

    patterns = NDArray("float16", 4)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    score_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    score_values = NDArray("float32", 3, allow_none=True)
    score = traitlets.Unicode("").tag(sync=True)
    n_kv_heads = traitlets.Int(0).tag(sync=True)
    layer_range = traitlets.List(traitlets.Int(), minlen=2, maxlen=2, default_value=[0, 0]).tag(sync=True)
    selected = traitlets.List(traitlets.Int(), maxlen=2).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        patterns: np.ndarray,
        tokens: Sequence[str],
        layer_labels: Sequence[str] | None = None,
        head_scores: Mapping[str, np.ndarray] | None = None,
        *,
        n_kv_heads: int | None = None,
        score: str | None = None,
        layer_range: Sequence[int] | None = None,
        selected: Sequence[int] = (),
        title: str = "",
        **kwargs,
    ):
        """
        patterns: [n_layers, n_heads, n_tokens, n_tokens] attention weights (query x key), sent as float16.
        head_scores: {name: [n_layers, n_heads]} e.g. entropy, previous-token, induction, first-token.
        n_kv_heads: key/value heads of a grouped-query model (default: n_heads, i.e. no grouping).
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 4 or patterns.shape[2] != patterns.shape[3]:
            raise WidgetDataError(f"patterns must be [n_layers, n_heads, n_tokens, n_tokens], got shape {patterns.shape}")
        n_layers, n_heads = patterns.shape[:2]
        score_names = list(head_scores or {})
        score_values = (
            np.stack([np.asarray(head_scores[name], dtype=np.float32) for name in score_names]) if score_names else None
        )
        super().__init__(
            patterns=patterns,
            tokens=[str(t) for t in tokens],
            layer_labels=[str(x) for x in layer_labels] if layer_labels is not None else [str(i) for i in range(n_layers)],
            score_names=score_names,
            score_values=score_values,
            score=score if score is not None else (score_names[0] if score_names else ""),
            n_kv_heads=n_heads if n_kv_heads is None else int(n_kv_heads),
            layer_range=list(layer_range) if layer_range is not None else [0, n_layers - 1],
            selected=list(selected),
            title=title,
            **kwargs,
        )

    @property
    def head_grid(self) -> tuple[int, int]:
        return tuple(self.patterns.shape[:2])

    def __repr__(self) -> str:
        """Short and stable (no ids or array dumps), so notebook outputs compare across runs."""
        n_layers, n_heads = self.head_grid
        return f"AttentionWidget(title={self.title!r}, layers={n_layers}, heads={n_heads}, tokens={len(self.tokens)}, scores={self.score_names})"

    # Cross-validation runs once all traits of __init__ (or a hold_trait_notifications block) are set.

    @traitlets.validate("patterns")
    def _check_patterns(self, proposal):
        patterns = proposal["value"]
        if patterns.shape[2] != patterns.shape[3] or 0 in patterns.shape:
            raise WidgetDataError(f"patterns must be non-empty [n_layers, n_heads, n_tokens, n_tokens], got shape {patterns.shape}")
        n_layers, n_heads, n_tokens = patterns.shape[:3]
        # The traits sized by the patterns must already agree (inside a hold block they are set first).
        for name, expected, unit in (("tokens", n_tokens, "tokens"), ("layer_labels", n_layers, "layers")):
            if len(getattr(self, name)) not in (0, expected):
                raise WidgetDataError(f"{name} has {len(getattr(self, name))} entries, patterns has {expected} {unit}")
        if self.score_values is not None and self.score_values.shape[1:] != (n_layers, n_heads):
            raise WidgetDataError(f"head scores must each be [n_layers, n_heads] = {(n_layers, n_heads)}, got {self.score_values.shape[1:]}")
        return patterns

    @traitlets.validate("tokens")
    def _check_tokens(self, proposal):
        if len(proposal["value"]) != self.patterns.shape[2]:
            raise WidgetDataError(f"tokens has {len(proposal['value'])} entries, patterns has {self.patterns.shape[2]} tokens")
        return proposal["value"]

    @traitlets.validate("layer_labels")
    def _check_layer_labels(self, proposal):
        if len(proposal["value"]) != self.head_grid[0]:
            raise WidgetDataError(f"layer_labels has {len(proposal['value'])} entries, patterns has {self.head_grid[0]} layers")
        return proposal["value"]

    @traitlets.validate("score_values")
    def _check_scores(self, proposal):
        scores = proposal["value"]
        if scores is not None:
            if scores.shape[1:] != self.head_grid:
                raise WidgetDataError(f"head scores must each be [n_layers, n_heads] = {self.head_grid}, got {scores.shape[1:]}")
            if scores.shape[0] != len(self.score_names):
                raise WidgetDataError(f"{scores.shape[0]} score planes for {len(self.score_names)} score_names")
        return scores

    @traitlets.validate("score")
    def _check_score(self, proposal):
        if proposal["value"] and proposal["value"] not in self.score_names:
            raise WidgetDataError(f"score {proposal['value']!r} is not one of {self.score_names}")
        return proposal["value"]

    @traitlets.validate("n_kv_heads")
    def _check_kv_heads(self, proposal):
        n_kv, n_heads = proposal["value"], self.head_grid[1]
        if n_kv < 1 or n_heads % n_kv:
            raise WidgetDataError(f"n_kv_heads must divide the {n_heads} heads, got {n_kv}")
        return n_kv

    @traitlets.validate("layer_range")
    def _check_layer_range(self, proposal):
        first, last = proposal["value"]
        if not 0 <= first <= last < self.head_grid[0]:
            raise WidgetDataError(f"layer_range must be [first, last] with 0 <= first <= last < {self.head_grid[0]}, got {[first, last]}")
        return [first, last]

    @traitlets.validate("selected")
    def _check_selected(self, proposal):
        selected = list(proposal["value"])
        if selected and (len(selected) != 2 or not all(0 <= i < n for i, n in zip(selected, self.head_grid))):
            raise WidgetDataError(f"selected must be [] or [layer, head] inside the {self.head_grid} grid, got {selected}")
        return selected
