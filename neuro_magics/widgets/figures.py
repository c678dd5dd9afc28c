"""Plotly figures of results, for papers: ``figure_for(result)`` picks the drawing by the result's kind.

Diverging maps use the widgets' own scale (``colors.STOPS["diverging"]``), symmetric about
zero, so a figure paints every value the colour its widget paints it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.errors import NeuroMagicsError
from .colors import plotly_colorscale

SEQUENTIAL = plotly_colorscale("sequential")
DIVERGING = plotly_colorscale("diverging")


def figure_for(result, *args: Any, **kwargs: Any) -> go.Figure:
    """The plotly figure of any result (``result.figure()`` calls this)."""
    draw = _FIGURES.get(result.kind)
    if draw is None:
        raise NeuroMagicsError(f"No figure for {result.kind!r} results; use .to_numpy() or .to_pandas().")
    return draw(result, *args, **kwargs)


def symmetric_limit(values: np.ndarray) -> float:
    """Largest finite |value| (1 when there is none): the half-range of a diverging map."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def diverging(values: np.ndarray) -> dict[str, Any]:
    """Heatmap settings for a map centred on zero: the shared scale over [-limit, +limit]."""
    limit = symmetric_limit(values)
    return {"colorscale": DIVERGING, "zmin": -limit, "zmax": limit}


# -- scans ---------------------------------------------------------------------------------


def scan_figure(result, metric: str | None = None) -> go.Figure:
    """A heatmap of one metric (default: the first), steps x tokens."""
    from ..analyses.scanning import LENS_METRICS, STREAM_METRICS

    name = metric or result.metric_names[0]
    values = result.metric(name)
    spec = {m[0]: m for m in (*LENS_METRICS, *STREAM_METRICS)}.get(name)
    label = spec[1] if spec else name
    if spec and spec[2] == "diverging":
        colours = {"colorscale": DIVERGING, "zmin": spec[4], "zmax": spec[5]}
    else:
        colours = {"colorscale": SEQUENTIAL}
    # Positions on the axis (token strings repeat); the strings become tick labels.
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(range(len(result.tokens))),
            y=list(range(len(result.steps))),
            colorbar={"title": {"text": label}},
            hovertemplate="step %{y} · token %{x}: %{z}<extra></extra>",
            **colours,
        )
    )
    figure.update_layout(
        title=f"{label}: {result.metadata.get('model', '')}",
        xaxis={"title": "token", "tickmode": "array", "tickvals": list(range(len(result.tokens))),
               "ticktext": [_visible(t) for t in result.tokens]},
        yaxis={"title": "step", "tickmode": "array", "tickvals": list(range(len(result.steps))),
               "ticktext": result.row_labels},
    )
    return figure


def scan_batch_figure(result, metric: str | None = None) -> go.Figure:
    """One heatmap per prompt, stacked vertically."""
    figure = make_subplots(rows=len(result.scans), cols=1, subplot_titles=[_short(s.prompt) for s in result.scans])
    for row, scan in enumerate(result.scans, start=1):
        single = scan_figure(scan, metric)
        figure.add_trace(single.data[0].update(showscale=row == 1), row=row, col=1)
        figure.update_xaxes(single.layout.xaxis, row=row, col=1)
        figure.update_yaxes(single.layout.yaxis, row=row, col=1)
    figure.update_layout(height=max(400, 300 * len(result.scans)), title=scan_figure(result.scans[0], metric).layout.title)
    return figure


# -- patching and tracing --------------------------------------------------------------------


def patch_figure(result) -> go.Figure:
    values = result.to_numpy()
    figure = go.Figure(go.Heatmap(
        z=values, x=[f"{i}: {t}" for i, t in enumerate(result.col_labels)], y=result.row_labels,
        colorbar={"title": "effect"}, **diverging(values),
    ))
    figure.update_layout(
        title=result.title, xaxis_title=result.columns, yaxis_title="layer (program step)",
        yaxis={"autorange": "reversed"},
    )
    return figure


def trace_figure(result) -> go.Figure:
    """The three effect maps (residual stream, attention window, MLP window) on one colour axis."""
    effect = result.effect
    figure = make_subplots(rows=1, cols=3, subplot_titles=["residual stream", "attention (window)", "MLP (window)"],
                           shared_yaxes=True)
    labels = [f"{i}: {t}" for i, t in enumerate(result.col_labels)]
    for s in range(3):
        figure.add_trace(go.Heatmap(z=effect[s], x=labels, y=result.row_labels, coloraxis="coloraxis"), row=1, col=s + 1)
    limit = symmetric_limit(effect)
    figure.update_layout(title=result.title, coloraxis={"colorscale": DIVERGING, "cmin": -limit, "cmax": limit},
                         yaxis={"autorange": "reversed"})
    return figure


# -- brain scan and diff ---------------------------------------------------------------------


def brainscan_figure(result) -> go.Figure:
    """The delta map, Block Influence per layer, and angular distance."""
    figure = make_subplots(rows=1, cols=3, column_widths=[0.42, 0.16, 0.42], horizontal_spacing=0.08,
                           subplot_titles=("Δ score (duplicate i:j)", "Block Influence", "angular distance d(i, j)"))
    figure.add_trace(go.Heatmap(z=result.delta, colorbar={"x": 0.40, "len": 0.9},
                                hovertemplate="i=%{y} j=%{x}<br>Δ %{z:+.4f}<extra></extra>", **diverging(result.delta)),
                     row=1, col=1)
    figure.add_trace(go.Bar(x=result.block_influence, y=np.arange(result.n_layers), orientation="h", showlegend=False),
                     row=1, col=2)
    upper = np.where(np.triu(np.ones_like(result.angular_distance, dtype=bool)), result.angular_distance, np.nan)
    figure.add_trace(go.Heatmap(z=upper, colorscale=SEQUENTIAL, colorbar={"x": 1.0, "len": 0.9},
                                hovertemplate="i=%{y} j=%{x}<br>d %{z:.4f}<extra></extra>"), row=1, col=3)
    for col, (x_title, y_title) in enumerate((("end j", "start i"), ("BI", "layer"), ("layer j", "layer i")), start=1):
        figure.update_xaxes(title_text=x_title, row=1, col=col)
        figure.update_yaxes(title_text=y_title, autorange="reversed", row=1, col=col)
    figure.update_layout(title=f"Brain scan of {result.metadata.get('model', '')}", height=480, width=1200)
    return figure


def diff_figure(result) -> go.Figure:
    """Heatmap of the log-prob change of each original continuation token."""
    change = result.logprob_change
    hover = [list(row) + [""] * (change.shape[1] - len(row)) for row in result.before.pieces]
    figure = go.Figure(go.Heatmap(
        z=change, text=hover,
        y=[_short(" ".join(p.split())) for p in result.prompts], x=list(range(change.shape[1])),
        hovertemplate="%{y}<br>token %{x}: %{text}<br>Δ log p %{z:.3f}<extra></extra>",
        colorbar={"title": "Δ log p"}, **diverging(change),
    ))
    before, after = result.before, result.after
    figure.update_layout(
        title=(f"{after.label} vs {before.label}: perplexity {before.perplexity:.2f} → "
               f"{after.perplexity:.2f}, depth {before.depth} → {after.depth}"),
        xaxis_title=f"token of the {before.label} continuation", yaxis_autorange="reversed",
    )
    return figure


def _visible(token: str) -> str:
    return token.replace(" ", "␣").replace("\n", "↵") or "∅"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prune_figure(result) -> go.Figure:
    """Sparsity per block and matrix (or Block Influence per step, dropped ones marked)."""
    if result.method == "layers":
        colours = ["crimson" if k in result.dropped else "grey" for k in range(len(result.block_influence))]
        figure = go.Figure(go.Bar(x=list(range(len(result.block_influence))), y=result.block_influence,
                                  marker_color=colours, hovertemplate="position %{x}<br>BI %{y:.4f}<extra></extra>"))
        figure.update_xaxes(title_text="position (red: dropped)")
        figure.update_yaxes(title_text="Block Influence")
    else:
        grid, blocks, paths = result.sparsity_grid()
        figure = go.Figure(go.Heatmap(z=grid, x=paths, y=blocks, colorscale=SEQUENTIAL, zmin=0, zmax=1,
                                      colorbar={"title": "sparsity"},
                                      hovertemplate="block %{y} %{x}<br>sparsity %{z:.3f}<extra></extra>"))
        figure.update_yaxes(title_text="block", autorange="reversed")
    figure.update_layout(title=f"{result.method} pruning · perplexity {result.perplexity_before:.2f} → "
                               f"{result.perplexity_after:.2f}")
    return figure


def edit_figure(result) -> go.Figure:
    """Per report prompt: log p(new target) and log p(old answer), before and after the edit."""
    labels = [f"{group}: {_short(prompt)}" for group, prompt in zip(result.groups, result.prompts)]
    figure = go.Figure()
    for name, values in (("log p(new) before", result.new_before), ("log p(new) after", result.new_after),
                         ("log p(old) before", result.old_before), ("log p(old) after", result.old_after)):
        figure.add_trace(go.Bar(name=name, x=values, y=labels, orientation="h"))
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(barmode="group", title=f"ROME edit at layer {result.layer}: {result.target!r}",
                         xaxis_title="mean log p per token")
    return figure


def spectra_figure(result, block: int, head: int) -> go.Figure:
    """Singular values of one head's Q, K, V, O and its OV and QK circuits (log scale)."""
    from ..analyses.weights import MATRICES

    figure = go.Figure([go.Scatter(y=result.spectra[block, head, k], mode="lines+markers", name=m)
                        for k, m in enumerate(MATRICES)])
    figure.update_layout(title=f"singular values of head {block}.{head}", xaxis_title="index",
                         yaxis_title="singular value", yaxis_type="log", height=360)
    return figure


def weights_figure(result, block: int | None = None, head: int | None = None) -> go.Figure:
    """Norms of every head's matrices and circuits (one panel each); with ``block`` and
    ``head``, that head's singular spectra."""
    from ..analyses.weights import MATRICES

    if block is not None and head is not None:
        return spectra_figure(result, block, head)
    figure = make_subplots(rows=1, cols=len(MATRICES), subplot_titles=[f"|{m}|" for m in MATRICES], horizontal_spacing=0.03)
    for k, m in enumerate(MATRICES, start=1):
        figure.add_trace(go.Heatmap(z=result.norms[:, :, k - 1], colorscale=SEQUENTIAL, showscale=False,
                                    hovertemplate=f"block %{{y}} head %{{x}}<br>|{m}| %{{z:.4g}}<extra></extra>"),
                         row=1, col=k)
        figure.update_yaxes(autorange="reversed", row=1, col=k)
    figure.update_layout(title=f"head weight norms · {result.metadata.get('model', '')}", height=420, width=1400)
    return figure


def quantize_figure(result) -> go.Figure:
    """Relative weight error of every rounded matrix."""
    grid, blocks, paths = result.error_grid()
    figure = go.Figure(go.Heatmap(z=grid, x=paths, y=blocks, colorscale=SEQUENTIAL, colorbar={"title": "rel. error"},
                                  hovertemplate="block %{y} %{x}<br>error %{z:.4f}<extra></extra>"))
    figure.update_yaxes(title_text="block", autorange="reversed")
    figure.update_layout(title=f"simulated int{result.bits} rounding: |W - Q(W)| / |W|")
    return figure


_FIGURES: dict[str, Callable[..., go.Figure]] = {
    "scan": scan_figure,
    "scan_batch": scan_batch_figure,
    "patch": patch_figure,
    "trace": trace_figure,
    "brainscan": brainscan_figure,
    "diff": diff_figure,
    "prune": prune_figure,
    "edit": edit_figure,
    "weights": weights_figure,
    "quantize": quantize_figure,
}
