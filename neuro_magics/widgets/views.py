"""The widget of each result kind, registered on import (``core.results.register_view``).

Results are plain data and know nothing of widgets; their repr asks core for the widget this
module registered for their kind. This module is where a view is wired back to the result (a
click on a scan cell sets ``result.selected``) and to the engine (a click on a brain-scan cell
applies that config).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets
import numpy as np

from ..core.errors import NeuroMagicsError
from ..core.progress import observe
from ..core.results import register_view
from .attention import AttentionWidget
from .attribution import AttributionWidget
from .brainscan import BrainScanWidget
from .diff import DiffWidget
from .heatmap import HeatmapWidget
from .lines import LinesWidget
from .networks import NetworksGallery
from .patching import PatchingWidget
from .projection_axes import projection_axis_titles
from .sae import SaeDashboard
from .scatter import ScatterWidget


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
        metric = {"name": name, "label": label, "scale": scale, "fmt": fmt, "vmin": vmin, "vmax": vmax,
                  **_METRIC_READING.get(name, {})}
        metrics.append(metric)
    lens = {}
    if result.has_lens:
        used = sorted(result.vocab)
        lens = dict(
            detail_token_ids=np.searchsorted(used, result.top_ids).astype(np.int32),
            detail_probs=result.top_probs.astype(np.float16),
            detail_vocab=[result.vocab[i] for i in used],
        )
    widget = HeatmapWidget(
        result.metrics, metrics, block_row_labels(result.steps, result.blocks), result.tokens,
        row_title="block", col_title="token", title=f"scan: {result.metadata.get('model', '')}",
        marks=sink_marks(result.metrics[result.metric_names.index("norm")]) if "norm" in result.metric_names else (),
        **lens,
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


#: How each scan metric reads at first sight. The first token's residual norm is often 20-30x every
#: other one (an attention sink): on a log colour scale the rest keep their shades (a percentile clip
#: still left one bright column over flat purple). The legend says which way is good.
_METRIC_READING = {
    "norm": {"log": True},
    "target_prob": {"better": "higher"},
    "target_rank": {"better": "lower"},
}
SINK_RATIO = 5.0


def block_row_labels(steps: list[int], blocks: list[int]) -> list[str]:
    """Rows named by the block they run (what a user calls the layer); where the program runs a
    block more than once, each of its rows also says its step: ``8 (step 12)``."""
    repeated = {b for b in blocks if blocks.count(b) > 1}
    return [f"{b} (step {s})" if b in repeated else str(b) for s, b in zip(steps, blocks)]


def sink_marks(norm: np.ndarray) -> list[dict]:
    """Mark each token whose residual norm (median over steps) is over SINK_RATIO times the
    median token's: the attention sinks / massive activations, at the step where it peaks."""
    per_token = np.nanmedian(norm, axis=0)
    typical = float(np.nanmedian(per_token))
    marks = []
    for position in np.flatnonzero(per_token > SINK_RATIO * typical) if typical > 0 else ():
        row = int(np.nanargmax(norm[:, position]))
        marks.append({"row": row, "col": int(position),
                      "label": f"sink: norm {norm[row, position]:,.0f}, {per_token[position] / typical:.0f}x the median token"})
    return marks


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


def _apply_and_report(result) -> Callable[[int, int, Callable[[str], None], Callable[[Any], None]], Any]:
    """The click action: wait for the model (saying "queued"), apply config (i, j) to it with
    per-token progress, show its diff against the original model as soon as the cheap parts
    are known and fill it in as the continuations stream, and return the finished diff."""

    def action(i: int, j: int, report: Callable[[str], None], show: Callable[[Any], None]):
        subject = result.subject
        if subject is None:
            raise NeuroMagicsError("The model this scan was made on is not loaded any more: "
                                   "load it and call result.apply(i, j, subject=m).")
        if not subject.lock.acquire(blocking=False):
            report(f"duplicate {i}:{j} queued: waiting for the running cell or action to finish...")
            subject.lock.acquire()
        try:
            report(f"duplicate {i}:{j}: diffing against the original model...")

            def progress(desc: str, done: int, total: int, elapsed: float) -> None:
                report(f"duplicate {i}:{j}: {desc} {done}/{total} steps · {elapsed:.1f} s")

            widget = None

            def streamed(partial) -> None:
                nonlocal widget
                if widget is None:
                    widget = diff_widget(partial)
                    show(widget)
                else:
                    update_diff_widget(widget, partial)

            with observe(progress):
                diff = result.apply(i, j, on_update=streamed)
            if widget is not None:
                update_diff_widget(widget, diff)
        finally:
            subject.lock.release()
        report(f"Applied duplicate {i}:{j} ({len(result.program(i, j))} steps) to the model; "
               "%reset_layers or m.reset() restores the original.")
        return diff

    return action


def diff_widget(result) -> DiffWidget:
    return DiffWidget(*_diff_arguments(result), title=_diff_title(result), pending=result.pending,
                      perplexity_text=result.metadata.get("perplexity_text", ""))


def update_diff_widget(widget: DiffWidget, result) -> None:
    """Draw ``result`` (e.g. a more complete streamed diff) in an existing diff widget."""
    widget.update(*_diff_arguments(result), title=_diff_title(result), pending=result.pending)


def _diff_title(result) -> str:
    """Before -> after, in the order of the columns below it."""
    return f"{result.before.label} → {result.after.label} · {result.metadata.get('model', '')}"


def _diff_arguments(result) -> tuple:
    b, a = result.before, result.after
    return (
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
    )


# -- attribution -------------------------------------------------------------------------------


def attribution_widget(result) -> ipywidgets.Widget:
    """Tokens shaded by attribution, the matrix and the DLA map; a clicked head sets ``result.selected_head``
    and, linked in the browser (also in a saved notebook), opens its pattern in the attention explorer below."""
    parts = result.dla_parts
    dla = {}
    if parts is not None:
        identity = result.program_steps == list(range(len(result.program_steps)))
        dla = dict(
            dla_heads=parts.heads, dla_attn=parts.attn, dla_mlp=parts.mlp, dla_sources=parts.head_sources,
            dla_summary={"embed": parts.embed, "bias": parts.bias, "other": parts.other, "total": parts.total},
            row_labels=[str(k) if identity else f"{k}(b{b})" for k, b in enumerate(result.program_steps)],
        )
    widget = AttributionWidget(
        result.tokens, result.n_prompt, result.targets, result.target_positions, result.methods,
        np.stack([result.scores[m] for m in result.methods]),
        title=f"attribution: {result.metadata.get('model', '')}", explained=result.explained, foil=result.foil, **dla,
    )

    def follow(change: dict) -> None:
        new = change["new"]
        result.selected_head = {"step": new[0], "block": result.program_steps[new[0]], "head": new[1]} if new else None

    widget.observe(follow, names="selected_head")
    if result.attention is None:
        return widget
    hint = "click a head here or in the DLA map" if parts is not None else "click a head"
    explorer = AttentionWidget(result.attention, result.sources, widget.row_labels or None,
                               n_kv_heads=result.n_kv_heads, title=f"attention patterns ({hint})")
    box = ipywidgets.VBox([widget, explorer])
    box.head_link = ipywidgets.jslink((widget, "selected_head"), (explorer, "selected"))
    return box


# -- geometry: projections, probes ------------------------------------------------------------


def projection_widget(result) -> ScatterWidget:
    """The layer-slider scatter of a projection; a box selection sets ``result.selected``."""
    colorings = []
    labels = result.point_labels
    if any(labels):
        names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
        colorings.append({"name": "label", "kind": "category", "values": codes, "categories": list(names)})
    if result.clusters is not None:
        colorings.append({"name": "cluster", "kind": "category", "values": result.clusters,
                          "categories": [str(k) for k in range(int(result.clusters.max()) + 1)]})
    if result.unit == "token":
        colorings.append({"name": "position", "kind": "number", "values": result.position})
        names, codes = np.unique(np.asarray(result.point_tokens, dtype=str), return_inverse=True)
        colorings.append({"name": "token", "kind": "category", "values": codes, "categories": list(names)})
    names = [c["name"] for c in colorings]
    widget = ScatterWidget(
        result.coords, layer_labels=[str(s) for s in result.steps], colorings=colorings,
        color_by=result.color if result.color in names else (names[0] if names else None),
        point_text=result.text_index, point_position=result.position,
        point_tokens=result.point_tokens if result.unit == "token" else None, texts=result.texts,
        text_labels=result.labels, axis_titles=projection_axis_titles(result),
        title=f"{result.method.upper() if result.method != 'tsne' else 't-SNE'} of {result.site} "
              f"({result.n_points} {result.unit} points) · {result.metadata.get('model', '')}",
    )
    widget.selected = list(result.selected)

    def follow(change: dict) -> None:
        result.selected = [int(i) for i in change["new"]]

    widget.observe(follow, names="selected")
    return widget


def probe_widget(result) -> LinesWidget:
    """Accuracy by program step against the shuffled-label control (exact values on hover)."""
    return LinesWidget(
        np.stack([result.accuracy, result.control]), [f"{result.probe_kind} probe", "shuffled-label control"],
        [str(s) for s in result.steps], x_title="program step", y_title="held-out accuracy (fraction correct)", y_range=(0.0, 1.0),
        dashed=(False, True),
        title=f"probe of {' / '.join(result.classes)} on {len(result.texts)} texts ({result.fold_accuracy.shape[1]}"
              f"-fold CV) · {result.site} · {result.metadata.get('model', '')}",
    )


def language_similarity_widget(result) -> LinesWidget:
    return LinesWidget(
        np.stack([result.across, result.within]), ["same content, other language", "other content, same language"],
        [str(s) for s in result.steps], x_title="program step", y_title="mean cosine (−1 to 1)",
        title=f"translations vs same-language sentences ({len(result.pairs)} pairs) · {result.site} · "
              f"{result.metadata.get('model', '')}",
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


# -- neurosurgery ------------------------------------------------------------------------------


def before_after_table(rows, title: str, columns: tuple[str, str] = ("before", "after")) -> ipywidgets.HTML:
    """A small (measure, before, after) table."""
    import html

    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(a)}</th>"
                    f"<td style='text-align:right;padding-right:1em'>{html.escape(b)}</td>"
                    f"<td style='text-align:right'>{html.escape(c)}</td></tr>" for a, b, c in rows)
    return ipywidgets.HTML(f"<b>{html.escape(title)}</b><table class='neuro-magics-before-after'>"
                           f"<tr><th></th><th>{html.escape(columns[0])}</th><th>{html.escape(columns[1])}</th></tr>{cells}</table>")


def prune_widget(result) -> ipywidgets.VBox:
    """The before/after table, and the sparsity of every matrix (or the Block Influence of every step)."""
    model = result.metadata.get("model", "")
    table = before_after_table(result.summary_rows(), f"prune ({result.method}) · {model}")
    if result.method == "steps":
        influence = result.block_influence[:, None].astype(np.float32)
        dropped = [{"row": k, "col": 0, "label": "dropped"} for k in result.dropped_steps]
        view = HeatmapWidget(influence, [{"name": "bi", "label": "Block Influence", "scale": "sequential", "fmt": ".4f"}],
                             [str(k) for k in range(len(influence))], ["BI"], row_title="step", col_title="",
                             title="Block Influence (lowest dropped)", marks=dropped)
    else:
        grid, blocks, paths = result.sparsity_grid()
        view = HeatmapWidget(grid, [{"name": "sparsity", "label": "fraction of weights removed", "scale": "sequential",
                                     "fmt": ".3f", "vmin": 0.0, "vmax": 1.0}],
                             blocks, paths, row_title="block", col_title="matrix", title="sparsity per matrix")
    return ipywidgets.VBox([table, view])


def edit_widget(result) -> ipywidgets.VBox:
    """The before/after success table, and the diff of the generations when it was measured."""
    title = f"edit at block {result.block}: {result.template.replace('{}', result.subject_text)!r} -> {result.target!r}"
    parts = [before_after_table(result.summary_rows(), title)]
    if result.diff is not None:
        parts.append(diff_widget(result.diff))
    return ipywidgets.VBox(parts)


def weights_widget(result) -> ipywidgets.VBox:
    """Per-head norms of Q, K, V, O and the OV / QK circuits (a click shows that head's singular
    spectra), and the MLP norms per block."""
    from IPython.display import display

    from ..analyses.weights import MATRICES
    from .figures import spectra_figure

    heads = HeatmapWidget(
        np.moveaxis(result.norms, 2, 0),
        [{"name": m, "label": f"|{m}| (Frobenius)", "scale": "sequential", "fmt": ".4g"} for m in MATRICES],
        [str(b) for b in range(result.n_layers)], [str(h) for h in range(result.n_heads)],
        row_title="block", col_title="head", title=f"head weights · {result.metadata.get('model', '')} · click a head for its spectra",
    )
    mlp = HeatmapWidget(result.mlp_norms, [{"name": "mlp", "label": "MLP |W| (Frobenius)", "scale": "sequential",
                                            "fmt": ".4g"}],
                        [str(b) for b in range(result.n_layers)], result.mlp_names, row_title="block",
                        col_title="matrix", title="MLP weights")
    spectra = ipywidgets.Output()

    def show(change: dict) -> None:
        spectra.clear_output(wait=True)
        if change["new"]:
            with spectra:
                display(spectra_figure(result, *change["new"]))

    heads.observe(show, names="selected")
    return ipywidgets.VBox([heads, spectra, mlp])


def quantize_widget(result) -> ipywidgets.VBox:
    """The relative weight error of every rounded matrix, and the diff of the outputs."""
    grid, blocks, paths = result.error_grid()
    errors = HeatmapWidget(grid, [{"name": "error", "label": f"int{result.bits} relative error |W - Q(W)| / |W|",
                                   "scale": "sequential", "fmt": ".4f"}],
                           blocks, paths, row_title="block", col_title="matrix", title=f"simulated int{result.bits} rounding")
    return ipywidgets.VBox([errors, *([diff_widget(result.diff)] if result.diff is not None else [])])


# -- sparse autoencoders ------------------------------------------------------------------------


def sae_widget(result) -> SaeDashboard:
    """The feature dashboard; its buttons act on the model the SAE was made on, while loaded."""
    return SaeDashboard(result, subject=result.subject)


# -- fine-tunes and model diffs ------------------------------------------------------------------

#: Most points a training curve sends to the browser (evenly spaced steps).
CURVE_POINTS = 200


def finetune_widget(result) -> LinesWidget:
    """The loss curve of a LoRA fine-tune, titled with what was trained."""
    loss = np.asarray(result.loss, dtype=np.float32)
    steps = np.unique(np.linspace(0, len(loss) - 1, min(len(loss), CURVE_POINTS)).round().astype(int)) \
        if len(loss) else np.zeros(0, dtype=int)
    stopped = f", interrupted after {result.steps_done}" if result.interrupted else ""
    return LinesWidget(
        loss[steps][None], ["training loss"], [str(s + 1) for s in steps], x_title="training step",
        y_title="next-token cross-entropy (nats per token)",
        title=f"LoRA r={result.rank} alpha={result.alpha:g} on {len(result.targets)} modules · {result.steps} steps"
              f"{stopped} · {result.n_tokens} tokens · {result.metadata.get('model', '')}",
    )


def top_kl_table(result, n: int = 12) -> ipywidgets.HTML:
    """The tokens with the largest KL, in context, with the next token and each side's top prediction."""
    import html

    rows = []
    for item in result.top_tokens(n):
        rows.append(
            f"<tr><td style='text-align:right;padding-right:1em'>{item['kl']:.3g}</td>"
            f"<td style='font-family:monospace;white-space:pre'>{html.escape(item['left'])}"
            f"<b style='background:#f4a58288'>{html.escape(item['token'])}</b></td>"
            f"<td style='font-family:monospace;padding-left:1em'>{html.escape(repr(item['next']))}</td>"
            f"<td style='font-family:monospace;padding-left:1em'>{html.escape(repr(item['top_a']))}</td>"
            f"<td style='font-family:monospace;padding-left:1em'>{html.escape(repr(item['top_b']))}</td></tr>")
    return ipywidgets.HTML(
        f"<b>Largest KL({html.escape(result.a)} || {html.escape(result.b)})</b>"
        f"<table class='neuro-magics-top-kl'><tr><th>KL</th><th style='text-align:left'>context [token]</th>"
        f"<th>next</th><th>{html.escape(result.a)} predicts</th><th>{html.escape(result.b)} predicts</th></tr>"
        f"{''.join(rows)}</table>")


def model_diff_widget(result) -> ipywidgets.VBox:
    """Probe scores, the block x matrix heatmap of weight change (and its rank), the drift per
    layer, and the tokens with the largest KL in context."""
    title = f"{result.a} vs {result.b} · {result.metadata.get('model', '')} · mean KL {result.mean_kl:.3g}"
    parts = [before_after_table(result.summary_rows(), title, (result.a, result.b))] if result.probes else [ipywidgets.HTML(f"<b>{title}</b>")]
    change, blocks, paths = result.weight_grid()
    ranks, _, _ = result.rank_grid()
    parts.append(HeatmapWidget(
        np.stack([change, ranks]),
        [{"name": "change", "label": "relative weight change |W_B - W_A| / |W_A|", "scale": "sequential", "fmt": ".4g"},
         {"name": "rank", "label": "rank of the change", "scale": "sequential", "fmt": ".0f"}],
        blocks, paths, row_title="block", col_title="matrix", title="weight change per matrix"))
    if len(result.drift_l2):
        parts.append(LinesWidget(
            np.stack([result.drift_relative, 1 - result.drift_cosine, result.drift_pca[:, 0]]),
            ["relative L2 of the difference", "1 - cosine", "PC1 share of the difference"],
            [str(s) for s in range(len(result.drift_l2))], x_title="program step", y_title="drift (fraction; each line says of what)",
            title=f"residual drift per step (first {len(result.drift_l2)} steps; first token left out)"))
    parts.append(top_kl_table(result))
    return ipywidgets.VBox(parts)
def checkup_widget(result) -> ipywidgets.Widget:
    """The checkup's findings, views and actions (``widgets/checkup.py``)."""
    from .checkup import checkup_widget as build

    return build(result)


_WIDGETS: dict[str, Callable[[Any], ipywidgets.Widget]] = {
    "scan": scan_widget,
    "scan_batch": scan_batch_widget,
    "patch": patch_widget,
    "trace": trace_widget,
    "brainscan": brainscan_widget,
    "diff": diff_widget,
    "attribution": attribution_widget,
    "projection": projection_widget,
    "probe": probe_widget,
    "language_similarity": language_similarity_widget,
    "networks": networks_gallery,
    "network_lesion": lesion_widget,
    "prune": prune_widget,
    "edit": edit_widget,
    "weights": weights_widget,
    "quantize": quantize_widget,
    "sae": sae_widget,
    "finetune": finetune_widget,
    "model_diff": model_diff_widget,
    "checkup": checkup_widget,
}

for _kind, _build in _WIDGETS.items():
    register_view(_kind, widget=_build)
