"""The widget of each result: ``widget_for(result)`` turns a result's data into its view.

Results are plain data and know nothing of widgets; their repr calls ``widget_for``. This
module is where a view is wired back to the result (a click on a scan cell sets
``result.selected``) and to the engine (a click on a brain-scan cell applies that config).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets
import numpy as np

from ..core.errors import NeuroMagicsError
from .attention import AttentionWidget
from .brainscan import BrainScanWidget
from .diff import DiffWidget
from .heatmap import HeatmapWidget
from .networks import NetworksGallery
from .patching import PatchingWidget


def widget_for(result) -> ipywidgets.Widget:
    """The interactive view of any result (what ``result.widget()`` and its repr show)."""
    build = _WIDGETS.get(result.kind)
    if build is None:
        raise NeuroMagicsError(f"No widget for {result.kind!r} results; use .to_numpy() or .to_pandas().")
    return build(result)


# -- scans ---------------------------------------------------------------------------------


def scan_heatmap(result) -> HeatmapWidget:
    """The layer x token heatmap of a scan; clicking a cell sets ``result.selected``."""
    from ..analyses.scanning import LENS_METRICS, STREAM_METRICS

    specs = {m[0]: m for m in (*LENS_METRICS, *STREAM_METRICS)}
    metrics = []
    for name in result.metric_names:
        _, label, scale, fmt, vmin, vmax = specs[name]
        if name == "target_prob" and result.target:
            label = f"lens p({result.target!r})"
        metrics.append({"name": name, "label": label, "scale": scale, "fmt": fmt, "vmin": vmin, "vmax": vmax})
    lens = {}
    if result.has_lens:
        used = sorted(result.vocab)
        lens = dict(
            detail_token_ids=np.searchsorted(used, result.top_ids).astype(np.int32),
            detail_probs=result.top_probs.astype(np.float16),
            detail_vocab=[result.vocab[i] for i in used],
        )
    widget = HeatmapWidget(
        result.metrics, metrics, result.row_labels, result.tokens,
        row_title="step", col_title="token", title=f"scan: {result.metadata.get('model', '')}", **lens,
    )

    def follow(change: dict) -> None:
        if not change["new"]:
            result.selected = None
            return
        row, position = change["new"]
        result.selected = {"step": result.steps[row], "block": result.blocks[row], "position": position,
                           "token": result.tokens[position]}

    widget.observe(follow, names="selected")
    return widget


def scan_attention(result) -> AttentionWidget:
    """The attention explorer (layers x heads) of a scan; clicking a head sets ``result.selected_head``."""
    if result.attention is None:
        raise NeuroMagicsError("This scan has no attention patterns: scan again with --attention.")
    widget = AttentionWidget(
        result.attention.astype(np.float16), result.tokens, result.row_labels, result.scores,
        n_kv_heads=result.n_kv_heads, title=f"attention: {result.metadata.get('model', '')}",
    )

    def follow(change: dict) -> None:
        new = change["new"]
        result.selected_head = {"step": result.steps[new[0]], "head": new[1]} if new else None

    widget.observe(follow, names="selected")
    return widget


def scan_widget(result) -> ipywidgets.Widget:
    heatmap = scan_heatmap(result)
    if result.attention is None:
        return heatmap
    return ipywidgets.VBox([heatmap, scan_attention(result)])


def scan_batch_widget(result) -> ipywidgets.VBox:
    return ipywidgets.VBox([scan_widget(scan) for scan in result.scans])


# -- patching and tracing --------------------------------------------------------------------


def patch_widget(result) -> PatchingWidget:
    planes, metrics = [], []
    if result.effect is not None:
        planes += [result.effect, result.patched_metric]
        metrics += [
            {"name": "effect", "label": "normalised effect (exact)", "scale": "diverging", "fmt": ".3f"},
            {"name": "metric", "label": f"patched {result.metric}", "scale": "diverging",
             "center": result.corrupt_metric, "fmt": ".4g"},
        ]
    if result.attribution is not None:
        planes.append(result.attribution)
        metrics.append({"name": "attribution", "label": "normalised effect (attribution)",
                        "scale": "diverging", "fmt": ".3f"})
    compact = None if result.topk_ids is None else np.where(
        result.topk_ids >= 0, np.searchsorted(result.vocab_ids, result.topk_ids), -1).astype(np.int32)
    return PatchingWidget(
        values=np.stack(planes), metrics=metrics, row_labels=result.row_labels, col_labels=result.col_labels,
        col_title=result.columns, title=result.title, vocab=result.vocab, topk_ids=compact,
        topk_probs=result.topk_probs,
        reference_topk={
            "clean": ([result.token(i) for i in result.clean_topk[0]], result.clean_topk[1].tolist()),
            "corrupt": ([result.token(i) for i in result.corrupt_topk[0]], result.corrupt_topk[1].tolist()),
        },
        reference_metrics={"clean": result.clean_metric, "corrupt": result.corrupt_metric},
        metric_name=result.metric,
    )


_TRACE_LABELS = {"resid_pre": "residual stream", "attn_out": "attention (window)", "mlp_out": "MLP (window)"}


def trace_widget(result) -> PatchingWidget:
    from ..analyses.tracing import TRACE_SITES

    return PatchingWidget(
        values=result.effect,
        metrics=[{"name": site, "label": _TRACE_LABELS[site], "scale": "diverging", "fmt": ".3f"}
                 for site in TRACE_SITES],
        row_labels=result.row_labels, col_labels=result.col_labels, col_title="position", title=result.title,
        reference_topk={"clean": result.clean_topk, "corrupt": result.corrupt_topk},
        reference_metrics={"clean": result.clean_prob, "corrupt": result.corrupt_prob}, metric_name="prob",
    )


# -- brain scan and diff ---------------------------------------------------------------------


def brainscan_widget(result) -> BrainScanWidget:
    """The brain-scan map; while its model is loaded, a click applies that config and shows the diff."""
    probe, score = result.metadata.get("probe", "?"), result.metadata.get("score", "?")
    return BrainScanWidget(
        delta=result.delta, scores=result.scores, baseline=result.baseline,
        block_influence=result.block_influence, angular_distance=result.angular_distance,
        best=[(cell.i, cell.j) for cell in result.best(1)],
        title=f"{result.metadata.get('model', '')} · probe {probe} ({len(result.baseline_items)} items, {score})"
              f" · Δ score per duplicated block i:j",
        on_select=_apply_and_report(result) if result.subject is not None else None,
    )


def _apply_and_report(result) -> Callable[[int, int], Any]:
    """The click action: apply config (i, j) to the scanned model, say so, and return its diff."""

    def action(i: int, j: int):
        diff = result.apply(i, j)
        print(f"Applied duplicate {i}:{j} ({len(result.program(i, j))} steps) to the model; "
              f"%reset_layers or m.reset() restores it.")
        return diff

    return action


def diff_widget(result) -> DiffWidget:
    b, a = result.before, result.after
    return DiffWidget(
        result.prompts,
        (b.pieces, a.pieces),
        result.divergence.tolist(),
        (b.logprobs, a.logprobs),
        (b.topk_pieces, a.topk_pieces),
        (b.topk_probs, a.topk_probs),
        tuple(
            {"label": s.label, "perplexity": s.perplexity, "depth": s.depth,
             "parameters": s.n_parameters, "program": s.program}
            for s in (b, a)
        ),
        title=f"{a.label} vs {b.label} · {result.metadata.get('model', '')}",
    )


# -- functional networks and the lesion experiment ---------------------------------------------


def networks_gallery(result) -> NetworksGallery:
    """The network gallery; while its model is loaded, the mask button masks the picked network and shows the diff."""
    on_mask = None
    if result.subject is not None:
        def on_mask(network: int):
            diff = result.mask(network)
            print(f"Masked network {network} on the model; %ablate --reset (or nm.reset_interventions(m)) removes it.")
            return diff
    return NetworksGallery(result, on_mask=on_mask)


def lesion_widget(result) -> ipywidgets.HTML:
    """The lesion table with a bar per condition (the random control: mean over seeds ± spread)."""
    import html

    table = result.table()
    low, high = min(0.0, float(table["score"].min())), max(0.0, float(table["score"].max()))
    span = (high - low) or 1.0
    rows = []
    for row in table.itertuples():
        width = 100 * abs(row.score) / span
        spread = f" ± {row.spread_over_seeds:.3f}" if row.spread_over_seeds else ""
        rows.append(
            f"<tr><td style='padding-right:1em'>{html.escape(row.condition)}</td>"
            f"<td style='width:260px'><div style='background:#b2182b;opacity:.75;height:12px;width:{width:.1f}%'></div>"
            f"</td><td style='text-align:right;padding-left:1em'>{row.score:.3f}{spread}</td>"
            f"<td style='text-align:right;padding-left:1em'>{row.change:+.3f}</td>"
            f"<td style='text-align:right;padding-left:1em'>{row.dims}</td></tr>")
    unit = "mean answer log-prob" if result.metadata.get("score") == "logprob" else "mean credit"
    header = (f"<b>Lesion</b> · probe {html.escape(str(result.metadata.get('probe', '')))} ({len(result.prompts)} "
              f"items, {unit}) · {html.escape(str(result.metadata.get('model', '')))}")
    return ipywidgets.HTML(
        f"<div class='neuro-magics-lesion'>{header}<table><tr><th style='text-align:left'>condition</th><th>|score|</th>"
        f"<th>score</th><th>change</th><th>dims</th></tr>{''.join(rows)}</table></div>")


_WIDGETS: dict[str, Callable[[Any], ipywidgets.Widget]] = {
    "scan": scan_widget,
    "scan_batch": scan_batch_widget,
    "patch": patch_widget,
    "trace": trace_widget,
    "brainscan": brainscan_widget,
    "diff": diff_widget,
    "networks": networks_gallery,
    "network_lesion": lesion_widget,
}
