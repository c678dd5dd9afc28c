"""Weight spectra: the power-law exponent alpha of every block's weight matrices."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...core.adapters import linear_modules
from ...core.offload import weight_float64
from ...core.progress import ProgressBar
from ...core.subject import Subject


def power_law_alpha(values: np.ndarray, min_tail: int = 10) -> tuple[float, float, float]:
    """``(alpha, xmin, ks_distance)`` of a power law ``p(x) ~ x^-alpha`` fitted to the tail
    ``x >= xmin`` of positive ``values``: the maximum-likelihood ``alpha = 1 + n / sum ln(x / xmin)``
    for every candidate ``xmin`` (each value leaving at least ``min_tail`` above it), keeping the
    one whose fitted CDF is nearest the empirical one in Kolmogorov-Smirnov distance (Clauset,
    Shalizi & Newman 2009; what WeightWatcher and ``powerlaw`` do). NaNs when too few values."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[x > 0]
    n = x.size
    if n < min_tail + 1:
        return math.nan, math.nan, math.nan
    logs = np.log(x)
    best = (math.inf, math.nan, math.nan)
    suffix = np.cumsum(logs[::-1])[::-1]  # sum of logs from i on
    for i in range(n - min_tail + 1):
        tail = n - i
        total = suffix[i] - tail * logs[i]
        if total <= 0:
            continue
        alpha = 1.0 + tail / total
        fitted = 1.0 - np.exp((1.0 - alpha) * (logs[i:] - logs[i]))
        empirical = np.arange(tail) / tail
        distance = float(np.max(np.abs(fitted - empirical)))
        if distance < best[0]:
            best = (distance, alpha, x[i])
    return best[1], best[2], best[0]



@torch.no_grad()
def weight_spectra(subject: Subject, bar: ProgressBar) -> tuple[np.ndarray, list[str]]:
    """alpha per block and weight matrix (named by its path in the block)."""
    names = list(linear_modules(subject.blocks[0]))
    alpha = np.full((subject.n_layers, len(names)), np.nan)
    for block_index, block in enumerate(subject.blocks):
        for name, module in linear_modules(block).items():
            if name in names:
                matrix = weight_float64(module)
                gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
                values = torch.linalg.eigvalsh(gram).cpu().numpy()  # the nonzero eigenvalues of W^T W, 2x faster than an SVD
                alpha[block_index, names.index(name)] = power_law_alpha(values)[0]
        bar.update()
    return alpha, names

