"""The patching view: a heatmap of effects, plus what the selected patch does to the next token.

Hovering a cell shows its patched top-k in the heatmap's own tooltip (precomputed, so it
works in a saved notebook without a kernel); clicking a cell fills the panel below with
the clean, corrupt and patched top-k side by side (needs a live kernel).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets
import numpy as np

from .heatmap import HeatmapWidget


def _visible(token: str) -> str:
    return html.escape(repr(token)[1:-1] if token.strip() != token or not token else token)


def _topk_table(title: str, tokens: Sequence[str], probs: Sequence[float], note: str = "") -> str:
    rows = "".join(
        f"<tr><td style='font-family:monospace;padding-right:0.8em'>{_visible(t)}</td>"
        f"<td style='text-align:right'>{p:.3f}</td></tr>"
        for t, p in zip(tokens, probs)
    )
    caption = f"<div style='font-weight:600'>{html.escape(title)}</div>"
    if note:
        caption += f"<div style='opacity:0.75'>{html.escape(note)}</div>"
    return f"<div style='display:inline-block;vertical-align:top;margin-right:2em'>{caption}<table>{rows}</table></div>"


class PatchingWidget(ipywidgets.VBox):
    """``HeatmapWidget`` of patching effects + a panel comparing next-token distributions."""

    def __init__(
        self,
        values: np.ndarray,
        metrics: Sequence[Mapping],
        row_labels: Sequence[str],
        col_labels: Sequence[str],
        *,
        col_title: str,
        title: str,
        reference_topk: Mapping[str, tuple[Sequence[str], Sequence[float]]],
        reference_metrics: Mapping[str, float],
        metric_name: str,
        vocab: Sequence[str] = (),
        topk_ids: np.ndarray | None = None,
        topk_probs: np.ndarray | None = None,
    ):
        """
        values: [n_metrics, steps, cols]; reference_topk: {"clean": (tokens, probs), "corrupt": (tokens, probs)};
        topk_ids / topk_probs: [steps, cols, k] each cell's patched top-k, ids indexing ``vocab`` (-1 pads).
        """
        self.heatmap = HeatmapWidget(
            values, metrics, row_labels, col_labels, row_title="layer", col_title=col_title, title=title,
            detail_token_ids=topk_ids, detail_probs=None if topk_probs is None else topk_probs.astype(np.float16),
            detail_vocab=list(vocab) if topk_ids is not None else None,
        )
        self._values = np.asarray(values)
        self._metric_names = [m["name"] for m in metrics]
        self._topk = (topk_ids, topk_probs, list(vocab))
        self._reference = {
            side: _topk_table(side, tokens, probs, f"{metric_name} {reference_metrics[side]:.4g}")
            for side, (tokens, probs) in reference_topk.items()
        }
        self._row_labels, self._col_labels, self._col_title = list(row_labels), list(col_labels), col_title
        self.panel = ipywidgets.HTML(self._panel_html(None))
        self.heatmap.observe(self._on_select, names="selected")
        super().__init__([self.heatmap, self.panel])

    def _panel_html(self, cell: tuple[int, int] | None) -> str:
        parts = [self._reference["clean"], self._reference["corrupt"]]
        topk_ids, topk_probs, vocab = self._topk
        if cell is None or topk_ids is None:
            hint = "Click a cell to see what that single patch does to the next token." if topk_ids is not None else ""
            return f"<div class='nm-patch-panel'>{''.join(parts)}<div>{hint}</div></div>"
        row, col = cell
        ids, probs = topk_ids[row, col], topk_probs[row, col]
        tokens = [vocab[i] for i in ids if i >= 0]
        values = ", ".join(f"{name} {self._values[i, row, col]:.4g}" for i, name in enumerate(self._metric_names))
        title = f"patched: layer {self._row_labels[row]}, {self._col_title} {col} ({self._col_labels[col]})"
        parts.append(_topk_table(title, tokens, probs[ids >= 0].tolist(), values))
        return f"<div class='nm-patch-panel'>{''.join(parts)}</div>"

    def _on_select(self, change) -> None:
        selected = change["new"]
        self.panel.value = self._panel_html(tuple(selected) if len(selected) == 2 else None)
