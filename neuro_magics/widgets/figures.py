"""Plotly figures of results, for papers, registered per result kind on import (``result.figure()``).

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
from ..core.results import register_view
from .colors import NONE_COLOUR, categorical, category_slots, plotly_colorscale
from .projection_axes import projection_axis_titles

SEQUENTIAL = plotly_colorscale("sequential")
DIVERGING = plotly_colorscale("diverging")


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


# -- attribution -------------------------------------------------------------------------------


def attribution_figure(result, method: str | None = None) -> go.Figure:
    """Sources x targets of one method (default: the first) beside the DLA layer x head map."""
    values = result.to_numpy(method).astype(np.float64).copy()
    for k, position in enumerate(result.target_positions):
        values[k, position + 1:] = np.nan  # later positions cannot matter: left blank
    sources = [f"{i}: {_visible(t)}" for i, t in enumerate(result.sources)]
    targets = [f"{k}: {_visible(t)}" for k, t in enumerate(result.targets)]
    parts = result.dla_parts
    columns = 1 if parts is None else 2
    titles = [f"{method or result.methods[0]}: {result.explained}"]
    figure = make_subplots(rows=1, cols=columns, column_widths=[0.6, 0.4][:columns], horizontal_spacing=0.12,
                           subplot_titles=titles + ([f"direct logit attribution (total {parts.total:+.3f})"]
                                                    if parts else []))
    figure.add_trace(go.Heatmap(z=values, x=sources, y=targets, colorbar={"x": 0.56 if parts else 1.0, "len": 0.9},
                                hovertemplate="%{y} ← %{x}: %{z:+.4g}<extra></extra>", **diverging(values)),
                     row=1, col=1)
    if parts is not None:
        grid = parts.heads if parts.heads is not None else parts.attn[:, None]
        grid = np.concatenate([grid, parts.mlp[:, None]], axis=1)
        labels = [f"h{h}" for h in range(grid.shape[1] - 1)] if parts.heads is not None else ["attn"]
        figure.add_trace(go.Heatmap(z=grid, x=labels + ["MLP"], y=list(range(len(grid))), colorbar={"x": 1.0, "len": 0.9},
                                    hovertemplate="layer %{y} %{x}: %{z:+.4f}<extra></extra>", **diverging(grid)),
                         row=1, col=2)
        figure.update_yaxes(title_text="layer (program step)", autorange="reversed", row=1, col=2)
    figure.update_yaxes(title_text="explained token", autorange="reversed", row=1, col=1)
    figure.update_xaxes(title_text="source token", row=1, col=1)
    figure.update_layout(title=f"Attribution · {result.metadata.get('model', '')}", height=460,
                         width=1200 if parts else 800)
    return figure


# -- geometry: projections, probes ------------------------------------------------------------


def projection_figure(result, layer: int | None = None, color: str | None = None) -> go.Figure:
    """One layer's map (default: the last), coloured by label, cluster, position or token
    (default: the result's own colouring), in the scatter widget's colours."""
    layer = result.steps[-1] if layer is None else layer
    k = result.step_index(layer)
    color = color or result.color
    xy = result.coords[k]
    hover = [result.context(i) for i in range(result.n_points)]
    figure = go.Figure()
    if color == "position":
        figure.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", text=hover,
                                      marker={"size": 4, "color": result.position, "colorscale": SEQUENTIAL,
                                              "colorbar": {"title": "position"}},
                                      hovertemplate="%{text}<extra></extra>"))
    else:
        if color == "cluster":
            if result.clusters is None:
                raise NeuroMagicsError("This projection has no clusters: project again with clusters=K or 'auto'.")
            groups = result.clusters[k]
            names = {int(c): ("none" if c < 0 else f"cluster {c}") for c in np.unique(groups)}
        elif color in ("label", "token"):
            values = np.asarray(result.point_labels if color == "label" else result.point_tokens, dtype=str)
            unique, groups = np.unique(values, return_inverse=True)
            names = {i: _visible(str(name)) for i, name in enumerate(unique)}
        else:
            raise NeuroMagicsError(f"Unknown colour {color!r}: use label, cluster, position or token.")
        slots = category_slots(groups)
        rest = ~np.isin(groups, list(slots))
        traces = [(groups == code, names[code], categorical(slot)) for code, slot in slots.items()]
        if rest.any():
            traces.append((rest, f"other ({len(np.unique(groups[rest]))} values)", NONE_COLOUR))
        for members, name, colour in traces:
            figure.add_trace(go.Scattergl(x=xy[members, 0], y=xy[members, 1], mode="markers", name=name,
                                          text=[hover[i] for i in np.flatnonzero(members)],
                                          marker={"size": 6, "color": colour},
                                          hovertemplate="%{text}<extra>" + name + "</extra>"))
    method = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[result.method]
    x_title, y_title = projection_axis_titles(result)[k]
    figure.update_layout(title=f"{method} of {result.site} at layer {layer}: {result.metadata.get('model', '')}",
                         xaxis={"title": x_title}, yaxis={"title": y_title, "scaleanchor": "x"})
    return figure


def probe_figure(result) -> go.Figure:
    """Accuracy by program step against the shuffled-label control."""
    figure = go.Figure([
        go.Scatter(x=result.steps, y=result.accuracy, mode="lines+markers", name=f"{result.probe_kind} probe",
                   line={"color": categorical(0)}),
        go.Scatter(x=result.steps, y=result.control, mode="lines+markers", name="shuffled-label control",
                   line={"dash": "dash", "color": categorical(1)}),
    ])
    figure.update_layout(title=f"Probe of {' / '.join(result.classes)} by step ({result.site}, {len(result.texts)} "
                               f"texts, {result.fold_accuracy.shape[1]}-fold CV): {result.metadata.get('model', '')}",
                         xaxis_title="step", yaxis={"title": "held-out accuracy", "range": [0, 1.02]})
    return figure


def language_similarity_figure(result) -> go.Figure:
    """Per program step, cosine of translations against cosine of other sentences in the same language."""
    figure = go.Figure([
        go.Scatter(x=result.steps, y=result.across, mode="lines+markers", name="same content, other language",
                   line={"color": categorical(0)}),
        go.Scatter(x=result.steps, y=result.within, mode="lines+markers", name="other content, same language",
                   line={"color": categorical(1)}),
    ])
    figure.update_layout(title=f"Translations vs same-language sentences ({result.site}, {len(result.pairs)} pairs): "
                               f"{result.metadata.get('model', '')}",
                         xaxis_title="step", yaxis_title="mean cosine")
    return figure


# -- functional networks ---------------------------------------------------------------------------


def networks_figure(result) -> go.Figure:
    """Where each network lives: its neurons per block (networks x blocks), key neurons per block below."""
    figure = make_subplots(rows=2, cols=1, row_heights=[0.75, 0.25], shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=(f"neurons with z > {result.threshold:g} per network and block",
                                           "key neurons per block"))
    figure.add_trace(go.Heatmap(z=result.counts, x=result.blocks, y=[f"network {k}" for k in range(result.n_networks)],
                                colorscale=SEQUENTIAL, colorbar={"title": "neurons", "len": 0.7, "y": 0.65},
                                hovertemplate="%{y}, block %{x}: %{z} neurons<extra></extra>"), row=1, col=1)
    figure.add_trace(go.Bar(x=result.blocks, y=result.key_counts, showlegend=False,
                            hovertemplate="block %{x}: %{y} key neurons<extra></extra>"), row=2, col=1)
    figure.update_yaxes(autorange="reversed", row=1, col=1)
    figure.update_xaxes(title_text="block", row=2, col=1)
    figure.update_layout(title=f"Functional networks of {result.metadata.get('model', '')}", height=520)
    return figure


def lesion_figure(result) -> go.Figure:
    """Probe score per condition; the random control is the mean over seeds with its spread."""
    table = result.table()
    unit = "mean answer log-prob" if result.metadata.get("score") == "logprob" else "mean credit"
    figure = go.Figure(go.Bar(
        x=table["condition"], y=table["score"],
        error_y={"type": "data", "array": table["spread_over_seeds"], "visible": True},
        text=[f"{v:.3f}" for v in table["score"]], textposition="outside",
        hovertemplate="%{x}<br>%{y:.4f}<extra></extra>"))
    figure.update_layout(title=f"Lesion on probe {result.metadata.get('probe', '')} ({len(result.prompts)} items)",
                         yaxis_title=unit, height=420)
    return figure


def _visible(token: str) -> str:
    return token.replace(" ", "␣").replace("\n", "↵") or "∅"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prune_figure(result) -> go.Figure:
    """Sparsity per block and matrix (or Block Influence per step, dropped ones marked)."""
    if result.method == "steps":
        colours = ["crimson" if k in result.dropped_steps else "grey" for k in range(len(result.block_influence))]
        figure = go.Figure(go.Bar(x=list(range(len(result.block_influence))), y=result.block_influence,
                                  marker_color=colours, hovertemplate="step %{x}<br>BI %{y:.4f}<extra></extra>"))
        figure.update_xaxes(title_text="step of the program before (red: dropped)")
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
    figure.update_layout(barmode="group", title=f"ROME edit at block {result.block}: {result.target!r}",
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


def sae_figure(result, bins: int = 40) -> go.Figure:
    """Feature density: how many features fire on what share of held-out tokens (log scale),
    the standard SAE health plot; never-firing features are counted in the title."""
    frequencies = result.frequencies
    alive = frequencies[frequencies > 0]
    figure = go.Figure(go.Histogram(x=np.log10(alive), nbinsx=bins, marker_color=categorical(0)))
    figure.update_layout(
        title=f"SAE feature density · {result.site} at step {result.step} (block {result.block}) · {result.width - alive.size} of "
              f"{result.width} features silent on the held-out tokens",
        xaxis_title="log10 firing frequency", yaxis_title="features", template="plotly_white")
    return figure


def finetune_figure(result) -> go.Figure:
    """The training loss per step of a LoRA fine-tune."""
    figure = go.Figure(go.Scatter(x=np.arange(1, result.steps_done + 1), y=result.loss, mode="lines",
                                  line={"color": categorical(0)}, hovertemplate="step %{x}<br>loss %{y:.4f}<extra></extra>"))
    stopped = f", interrupted after {result.steps_done}" if result.interrupted else ""
    figure.update_layout(title=f"LoRA r={result.rank} alpha={result.alpha:g} on {len(result.targets)} modules{stopped}",
                         xaxis_title="step", yaxis_title="training loss", template="plotly_white")
    return figure


def model_diff_figure(result, measure: str = "change") -> go.Figure:
    """Weight change per block and matrix (``measure="rank"``: the rank of the change), or the
    residual drift per step (``measure="drift"``)."""
    if measure == "drift":
        figure = go.Figure([go.Scatter(y=values, mode="lines+markers", name=name, line={"color": categorical(k)})
                            for k, (name, values) in enumerate((("relative L2", result.drift_relative),
                                                               ("1 - cosine", 1 - result.drift_cosine)))])
        figure.update_layout(title=f"residual drift · {result.a} vs {result.b}", xaxis_title="step",
                             yaxis_title="drift", template="plotly_white")
        return figure
    if measure not in ("change", "rank"):
        raise NeuroMagicsError(f"Unknown measure {measure!r}: use change, rank or drift.")
    grid, blocks, paths = result.weight_grid() if measure == "change" else result.rank_grid()
    figure = go.Figure(go.Heatmap(z=grid, x=paths, y=blocks, colorscale=SEQUENTIAL, colorbar={"title": measure},
                                  hovertemplate=f"block %{{y}} %{{x}}<br>{measure} %{{z:.4g}}<extra></extra>"))
    figure.update_yaxes(title_text="block", autorange="reversed")
    figure.update_layout(title=f"{'|W_B - W_A| / |W_A|' if measure == 'change' else 'rank of W_B - W_A'} · "
                               f"{result.a} vs {result.b} · mean KL {result.mean_kl:.3g}")
    return figure


def checkup_figure(result) -> go.Figure:
    """Attention to the first token per head, head importance, and the first token's residual
    norm against the other tokens' per layer (where sinks and massive activations live)."""
    figure = make_subplots(rows=1, cols=3, subplot_titles=["attention to the first token", "head importance |dL/d gate|",
                                                           "residual norm (log)"], horizontal_spacing=0.08)
    for col, (values, label) in enumerate(((result.sink_mass, "sink"), (result.importance, "importance")), start=1):
        figure.add_trace(go.Heatmap(z=values, colorscale=SEQUENTIAL, showscale=False,
                                    hovertemplate=f"layer %{{y}} head %{{x}}<br>{label} %{{z:.4g}}<extra></extra>"),
                         row=1, col=col)
        figure.update_yaxes(title_text="layer", autorange="reversed", row=1, col=col)
        figure.update_xaxes(title_text="head", row=1, col=col)
    layers = list(range(len(result.resid_norm)))
    figure.add_trace(go.Scatter(x=layers, y=result.first_norm, name="first token"), row=1, col=3)
    figure.add_trace(go.Scatter(x=layers, y=result.resid_norm, name="other tokens (mean)"), row=1, col=3)
    figure.update_yaxes(type="log", row=1, col=3)
    figure.update_xaxes(title_text="layer", row=1, col=3)
    figure.update_layout(title=f"checkup · {result.metadata.get('model', '')}", height=420, width=1300)
    return figure


_FIGURES: dict[str, Callable[..., go.Figure]] = {
    "scan": scan_figure,
    "scan_batch": scan_batch_figure,
    "patch": patch_figure,
    "trace": trace_figure,
    "brainscan": brainscan_figure,
    "diff": diff_figure,
    "attribution": attribution_figure,
    "projection": projection_figure,
    "probe": probe_figure,
    "language_similarity": language_similarity_figure,
    "networks": networks_figure,
    "network_lesion": lesion_figure,
    "prune": prune_figure,
    "edit": edit_figure,
    "weights": weights_figure,
    "quantize": quantize_figure,
    "checkup": checkup_figure,
    "sae": sae_figure,
    "finetune": finetune_figure,
    "model_diff": model_diff_figure,
}

for _kind, _draw in _FIGURES.items():
    register_view(_kind, figure=_draw)
