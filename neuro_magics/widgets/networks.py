"""The network gallery: where each functional network lives, what drives it, and a click that masks it.

Composed from the generic HeatmapWidget in an ipywidgets container: networks x layers
(neurons above the threshold, or the largest z) on top; for the network picked there, the
tokens where its time course peaks (in context) and its time course over a chosen text; a
button masks it on the model the networks were found on and shows the before/after diff.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets
import numpy as np
from IPython.display import display

from .heatmap import HeatmapWidget


def _visible(text: str) -> str:
    """Context text as text: spaces stay spaces, a line break shows as a faint return mark."""
    return html.escape(text).replace("\n", "<span style='opacity:.45'>⏎</span>")


def key_neurons(result, network: int, per_block: int = 6) -> list[tuple[int, list[tuple[int, float]]]]:
    """Where ``network`` lives: per block holding any of its neurons, its neurons by descending z
    (at most ``per_block``), as ``(block, [(neuron, z), ...])``."""
    found = []
    for row, block in enumerate(result.blocks):
        neurons = np.flatnonzero(result.network_masks[network, row])
        if neurons.size:
            z = result.maps[network, row, neurons]
            order = np.argsort(-z, kind="stable")[:per_block]
            found.append((int(block), [(int(neurons[i]), float(z[i])) for i in order]))
    return found


class NetworksGallery(ipywidgets.VBox):
    """One result's networks. ``on_mask(k)`` runs when the mask button is pressed for network
    ``k``; what it returns (the diff) is displayed in ``output``."""

    def __init__(self, result, *, on_mask: Callable[[int], Any] | None = None, top: int = 8):
        self.result, self.on_mask, self.top = result, on_mask, top
        peak = result.maps.max(axis=2)  # [k, L]
        self.where = HeatmapWidget(
            np.stack([result.counts, peak]).astype(np.float32),
            metrics=[{"name": "neurons", "label": f"neurons with z > {result.threshold:g}", "fmt": "d"},
                     {"name": "max_z", "label": "largest z in the layer", "fmt": ".2f"}],
            row_labels=[str(n) for n in range(result.n_networks)],
            col_labels=[str(layer) for layer in result.blocks], row_title="network", col_title="block",
            title=repr(result).removeprefix("NetworksResult(").removesuffix(")") + " · click a network to open it",
            tooltip_template="network {row} · block {col} · {neurons:d} neurons · largest z {max_z:.2f}",
        )
        self.tokens = ipywidgets.HTML()
        self.text = ipywidgets.Dropdown(description="text", layout=ipywidgets.Layout(width="95%"))
        self.mask_button = ipywidgets.Button(description="mask this network and diff", icon="scissors",
                                             layout=ipywidgets.Layout(width="auto"))
        self.output = ipywidgets.Output()
        self.network = 0
        self.course: HeatmapWidget | None = None
        self.where.observe(self._picked, names="selected")
        self.text.observe(lambda change: self._draw_course(), names="value")
        self.mask_button.on_click(lambda button: self._mask())
        self.show(0)
        super().__init__([self.where, self.tokens, self.text, self.course, self.mask_button, self.output])

    # -- selection ---------------------------------------------------------------------------------

    def _picked(self, change: dict) -> None:
        if change["new"]:
            self.show(change["new"][0])

    def show(self, network: int) -> None:
        """Fill the panels for ``network``: its top tokens, and its time course over the text
        where it peaks."""
        result = self.result
        self.network = network
        top = result.top_tokens(network, self.top)
        rows = "".join(
            f"<div style='white-space:pre;font-family:monospace;font-size:12px'>"
            f"<span style='opacity:.6'>{t['value']:6.2f} {html.escape(t['label'] or '-'):<12}</span> "
            f"{_visible(t['before'])}<b style='background:#fddbc7;color:#000'>{_visible(t['token'])}</b>"
            f"{_visible(t['after'])}</div>" for t in top)
        where = "".join(
            f"<div style='font-family:monospace;font-size:12px'>block {block}: "
            + ", ".join(f"{neuron} <span style='opacity:.6'>(z {z:.1f})</span>" for neuron, z in neurons)
            + (f" <span style='opacity:.6'>+{int(result.counts[network, result.blocks.index(block)]) - len(neurons)} more</span>"
               if result.counts[network, result.blocks.index(block)] > len(neurons) else "")
            + "</div>" for block, neurons in key_neurons(result, network))
        self.tokens.value = (f"<div class='nm-networks-top'><b>network {network}</b> · "
                             f"{int(result.counts[network].sum())} neurons (MLP-output dimensions, z &gt; "
                             f"{result.threshold:g}) · where it lives:{where or ' nowhere above the threshold'}"
                             f"<div style='margin-top:4px'>where its time course peaks:</div>{rows}</div>")
        texts = sorted({t["text_index"] for t in top}, key=[t["text_index"] for t in top].index)
        options = [(f"{n}: {' '.join(result.texts[n].split())[:70]}", n) for n in
                   texts + [n for n in range(len(result.texts)) if n not in texts]]
        self.text.options = options
        if self.text.value == texts[0]:
            self._draw_course()
        else:
            self.text.value = texts[0]  # the text where the network peaks; observing it draws the course
        self.mask_button.description = f"mask network {network} and diff"
        self.mask_button.disabled = self.on_mask is None
        self.mask_button.tooltip = ("" if self.on_mask is not None else
                                    "no model attached: %ablate --network K --from NAME masks it")

    def _draw_course(self) -> None:
        """A new time-course map (networks x tokens of the chosen text) in place of the old one."""
        if self.text.value is None:
            return
        result, text = self.result, int(self.text.value)
        pieces, _ = result.time_course(0, text)
        values = np.stack([result.time_course(n, text)[1] for n in range(result.n_networks)])
        self.course = HeatmapWidget(
            values[None].astype(np.float32),
            metrics=[{"name": "source", "label": "time course (source, unit variance)", "scale": "diverging",
                      "fmt": "+.2f"}],
            row_labels=[str(n) for n in range(result.n_networks)], col_labels=pieces, row_title="network",
            col_title="token", title=f"time courses over text {text} (its first token carries no signal)",
            marks=[{"row": self.network, "col": 1, "label": f"network {self.network}"}],
        )
        if self.children:
            self.children = [self.where, self.tokens, self.text, self.course, self.mask_button, self.output]

    # -- the click that masks ----------------------------------------------------------------------

    def _mask(self) -> None:
        with self.output:
            self.output.clear_output(wait=True)
            if self.on_mask is None:
                print("No model is attached to these networks: %ablate --network K --from NAME masks one.")
                return
            try:
                display(self.on_mask(self.network))
            except Exception as error:  # a click has no cell to fail: show the problem here
                print(f"{type(error).__name__}: {error}")
