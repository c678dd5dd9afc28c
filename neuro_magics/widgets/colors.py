"""The colour scales every view uses, for the browser widgets and the plotly figures alike.

The same stops as ``widgets_js/src/colors.js`` (a test keeps the two equal), so a figure
for a paper paints a value the colour the widget painted it: on the diverging scale
negative is blue, positive red, the centre near white.
"""

from __future__ import annotations

import numpy as np

#: Stops from the low end to the high end, interpolated linearly in RGB.
STOPS: dict[str, tuple[str, ...]] = {
    # viridis
    "sequential": ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
                   "#fde725"),
    # ColorBrewer RdBu reversed: negative blue, positive red
    "diverging": ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"),
    # magnitudes that are never negative (saliency, rollout, SAE activations): ColorBrewer OrRd from 0
    "magnitude": ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#b30000", "#7f0000"),
    # categories (labels, clusters, tokens): Tableau 10 without its grey (grey marks "none"), then three more
    "categorical": ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
                    "#17becf", "#bcbd22", "#1f3b73"),
}

#: What points of no category (HDBSCAN noise) are painted with.
NONE_COLOUR = "#969696"

#: Categories that get a colour of their own in a scatter; the rest are grey (as in the widget).
MAX_COLOURS = 9


def categorical(index: int) -> str:
    """The colour of category ``index`` (the palette repeats), as the scatter widget paints it."""
    return NONE_COLOUR if index < 0 else STOPS["categorical"][index % len(STOPS["categorical"])]


def category_slots(codes: np.ndarray, max_colours: int = MAX_COLOURS) -> dict[int, int]:
    """Palette slot of the ``max_colours`` most frequent category codes (ties: lower code first), as
    the scatter widget colours them; every other code (and -1, none) is grey, so a few colours stay
    tellable apart."""
    values, counts = np.unique(np.asarray(codes)[np.asarray(codes) >= 0], return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], values[i]))
    return {int(values[i]): slot for slot, i in enumerate(order[:max_colours])}


def plotly_colorscale(kind: str) -> list[tuple[float, str]]:
    """The scale as plotly's ``[(position, colour), ...]``, positions evenly spaced on 0..1."""
    stops = STOPS[kind]
    return [(k / (len(stops) - 1), colour) for k, colour in enumerate(stops)]


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255
