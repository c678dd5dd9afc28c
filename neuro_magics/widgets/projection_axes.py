"""What the axes of a projection's map mean, for the scatter widget and the plotly figure alike
(this module needs numpy only, so the widget does not import plotly)."""

from __future__ import annotations

import numpy as np


def axis_variance_shares(layer_map: np.ndarray, pc_ratios: np.ndarray) -> np.ndarray:
    """Share of the activations' total variance along each drawn axis of a PCA map. The map is the
    PC1-PC2 plane turned (Procrustes) to follow the previous step, so an axis mixes PC1 and PC2; a
    turn keeps the plane's variance, which is ``pc_ratios.sum()`` of the total."""
    spread = layer_map.astype(np.float64).var(axis=0)
    return spread / spread.sum() * float(np.sum(pc_ratios)) if spread.sum() > 0 else np.zeros(2)


def projection_axis_titles(result) -> list[list[str]]:
    """Axis titles per step: for PCA, the variance each drawn axis explains (the first step's axes
    are PC1 and PC2; later ones are that plane turned to follow the step before)."""
    if result.method != "pca":
        name = "UMAP" if result.method == "umap" else "t-SNE"
        return [[f"{name} 1 (no unit: only neighbours mean something)", f"{name} 2"] for _ in result.steps]
    titles = []
    for k in range(len(result.steps)):
        x_share, y_share = axis_variance_shares(result.coords[k], result.explained[k])
        if k == 0:
            titles.append([f"PC1: {x_share:.1%} of variance", f"PC2: {y_share:.1%} of variance"])
        else:
            turned = "PC1-PC2 plane turned to follow the step before"
            titles.append([f"axis 1 ({turned}): {x_share:.1%} of variance", f"axis 2: {y_share:.1%} of variance"])
    return titles
