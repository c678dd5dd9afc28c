"""Projections: the geometry of representations, layer by layer, as 2-D maps.

Activations (per token, or per text: mean or last token) at chosen layers are mapped to
2-D with PCA (always, at once), or UMAP / t-SNE when asked (both first reduced to 50
dimensions by PCA, the usual practice). Measured on 2 cores: PCA to 50 dimensions takes
about 1 s at 10k points, UMAP with 100 epochs about 10 s, openTSNE about 84 s; above
``UMAP_FIT_POINTS`` points UMAP is fitted on a random subsample and places the rest with
``transform``. Each layer's map is rotated / reflected onto the previous one (orthogonal
Procrustes over the same points), so points do not jump when a slider steps through
layers; distances within a map are unchanged. Clusters come from k-means (a given K) or
HDBSCAN (``"auto"``) on each layer's 50-dimensional PCA space.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.distributed import check_workers
from ..core.errors import NeuroMagicsError, check_seed
from ..core.programs import explicit_layer_word
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock
from ..core.activations import Activations, check_choice, collect, parse_steps

METHODS = ("pca", "umap", "tsne")
UNITS = ("token", "text")
TEXT_POOLING = ("mean", "last")
#: What the map's colours can show: the text's label, the cluster, the token's position, the token.
COLORS = ("label", "cluster", "position", "token")
#: Above this many points UMAP is fitted on a random subsample of this size, the rest transformed.
UMAP_FIT_POINTS = 20_000
#: Dimensions kept by the PCA that UMAP, t-SNE and clustering work on.
REDUCED_DIMS = 50
#: Tokens of context shown on either side of a token (hover text, ``context()``).
CONTEXT_TOKENS = 6

_BILINGUAL = Path(__file__).parent.parent / "probes" / "bilingual_en_fr.jsonl"


@lru_cache(maxsize=1)
def bilingual_pairs() -> tuple[tuple[str, str], ...]:
    """The built-in demo: the same sentences in English and French (written for neuro_magics)."""
    lines = _BILINGUAL.read_text(encoding="utf-8").splitlines()
    return tuple((record["en"], record["fr"]) for record in map(json.loads, filter(str.strip, lines)))


def demo_texts() -> tuple[list[str], list[str]]:
    """The bilingual demo as texts and labels ("en" / "fr")."""
    pairs = bilingual_pairs()
    return [en for en, _ in pairs] + [fr for _, fr in pairs], ["en"] * len(pairs) + ["fr"] * len(pairs)


@dataclass(kw_only=True, repr=False, eq=False)
class ProjectionResult(Result):
    """2-D maps of the same points at several layers.

    ``coords[layer, point]`` are the map coordinates (layers aligned by Procrustes),
    ``steps`` the program positions, ``blocks`` the blocks they ran. A point is a token or a
    text (``unit``); ``text_index`` / ``position`` say where it comes from, ``labels`` are
    per text. ``clusters[layer, point]`` (-1: noise) when clustering was asked. ``selected``
    holds the point indices picked by a box in the widget; ``color`` is what the map's colours
    show first (``COLORS``).
    """

    kind: ClassVar[str] = "projection"

    texts: list[str]
    labels: list[str]
    text_tokens: list[list[str]]
    text_index: np.ndarray  # [points] int32
    position: np.ndarray  # [points] int32, -1 for a whole text
    steps: list[int]
    blocks: list[int]
    site: str
    unit: str
    method: str
    coords: np.ndarray  # [layers, points, 2] float32
    explained: np.ndarray  # [layers, 2] float32: PCA explained-variance ratio of the two axes
    clusters: np.ndarray | None = None  # [layers, points] int32
    color: str = "label"
    metadata: dict[str, Any]
    selected: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.text_index = np.asarray(self.text_index, dtype=np.int32)
        self.position = np.asarray(self.position, dtype=np.int32)
        self.coords = np.asarray(self.coords, dtype=np.float32)
        self.explained = np.asarray(self.explained, dtype=np.float32)
        if self.clusters is not None:
            self.clusters = np.asarray(self.clusters, dtype=np.int32)

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C stopped the mapping: ``steps`` holds the layers finished before it."""
        return bool(self.metadata.get("interrupted"))

    @property
    def n_points(self) -> int:
        return self.coords.shape[1]

    @property
    def point_labels(self) -> list[str]:
        """Each point's label (its text's)."""
        return [self.labels[t] for t in self.text_index]

    @property
    def point_tokens(self) -> list[str]:
        """Each point's token, or for a whole-text point the text itself."""
        if self.unit == "text":
            return [self.texts[t] for t in self.text_index]
        return [self.text_tokens[t][p] for t, p in zip(self.text_index, self.position)]

    def context(self, point: int) -> str:
        """The point's token in its context, marked ``[[token]]`` (a whole text for text points)."""
        text, position = int(self.text_index[point]), int(self.position[point])
        if position < 0:
            return self.texts[text]
        tokens = self.text_tokens[text]
        before = "".join(tokens[max(0, position - CONTEXT_TOKENS):position])
        after = "".join(tokens[position + 1:position + 1 + CONTEXT_TOKENS])
        return f"{before}[[{tokens[position]}]]{after}"

    def step_index(self, step: int) -> int:
        """Where program step ``step`` sits in ``coords``."""
        if step not in self.steps:
            raise NeuroMagicsError(f"Step {step} was not projected: this result has steps {self.steps}.")
        return self.steps.index(step)

    # -- Result protocol -------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"text_index": self.text_index, "position": self.position, "coords": self.coords,
                  "explained": self.explained}
        if self.clusters is not None:
            arrays["clusters"] = self.clusters
        return arrays

    def _fields(self) -> dict[str, Any]:
        return {"texts": self.texts, "labels": self.labels, "text_tokens": self.text_tokens, "steps": self.steps,
                "blocks": self.blocks, "site": self.site, "unit": self.unit, "method": self.method,
                "color": self.color}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> ProjectionResult:
        return cls(**fields, **arrays, metadata=metadata)

    def to_numpy(self) -> np.ndarray:
        """The map coordinates ``[layers, points, 2]``."""
        return self.coords

    def to_pandas(self):
        """One row per (step, point), with the block the step ran: coordinates, label, token, text, position, cluster."""
        import pandas as pd

        labels, tokens = self.point_labels, self.point_tokens
        frames = []
        for k, step in enumerate(self.steps):
            frames.append(pd.DataFrame({
                "step": step, "block": self.blocks[k], "point": np.arange(self.n_points), "x": self.coords[k, :, 0], "y": self.coords[k, :, 1],
                "label": labels, "token": tokens, "text_index": self.text_index, "position": self.position,
                **({"cluster": self.clusters[k]} if self.clusters is not None else {}),
            }))
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        clusters = "" if self.clusters is None else f", clusters at {len(self.steps)} steps"
        return (f"ProjectionResult({self.method} of {self.n_points} {self.unit} points from {len(self.texts)} texts, "
                f"{self.site} at steps {_short(self.steps)}{clusters})")


def _short(steps: Sequence[int]) -> str:
    return ",".join(map(str, steps)) if len(steps) <= 8 else f"{steps[0]}..{steps[-1]} ({len(steps)})"


# -- the engine ----------------------------------------------------------------------------


def pca_2d(vectors: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Centred PCA scores and explained-variance ratios (scikit-learn)."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, *vectors.shape)
    model = PCA(n_components=n_components, svd_solver="auto", random_state=0)
    scores = model.fit_transform(vectors.astype(np.float64))
    return scores, model.explained_variance_ratio_


def align(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """``current`` rotated / reflected (about its centroid) to best match ``previous``: orthogonal
    Procrustes, so distances within the map do not change."""
    from scipy.linalg import orthogonal_procrustes

    centre = current.mean(0)
    rotation, _ = orthogonal_procrustes(current - centre, previous - previous.mean(0))
    return (current - centre) @ rotation + centre


def cluster(reduced: np.ndarray, clusters: int | str, seed: int = 0) -> np.ndarray:
    """k-means with ``clusters`` groups, or HDBSCAN for ``"auto"`` (-1 marks noise)."""
    if clusters == "auto":
        from sklearn.cluster import HDBSCAN

        return HDBSCAN(min_cluster_size=max(5, len(reduced) // 100), copy=True).fit_predict(reduced).astype(np.int32)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=int(clusters), n_init=10, random_state=seed).fit_predict(reduced).astype(np.int32)


def embed(reduced: np.ndarray, method: str, seed: int = 0, init: np.ndarray | None = None) -> np.ndarray:
    """UMAP or t-SNE of the PCA-reduced points; UMAP above ``UMAP_FIT_POINTS`` is fitted on a
    subsample. UMAP starts from ``init`` (the previous layer's map) when given, so neighbouring
    layers' maps differ only where the geometry does."""
    if method == "umap":
        with _torch_threads_kept():
            return _umap(reduced, seed, init)
    from openTSNE import TSNE

    return np.asarray(TSNE(n_components=2, perplexity=min(30.0, (len(reduced) - 1) / 3), random_state=seed,
                           n_jobs=1).fit(reduced))


def _umap(reduced: np.ndarray, seed: int, init: np.ndarray | None) -> np.ndarray:
    import umap

    model = umap.UMAP(n_components=2, n_epochs=100 if len(reduced) > 5000 else None, random_state=seed, n_jobs=1,
                      n_neighbors=min(15, len(reduced) - 1), init="pca" if init is None else init)
    if len(reduced) <= UMAP_FIT_POINTS:
        return model.fit_transform(reduced)
    rng = np.random.default_rng(seed)
    fitted = rng.choice(len(reduced), UMAP_FIT_POINTS, replace=False)
    if init is not None:
        model.init = init[fitted]
    coords = np.empty((len(reduced), 2))
    coords[fitted] = model.fit_transform(reduced[fitted])
    rest = np.setdiff1d(np.arange(len(reduced)), fitted)
    coords[rest] = model.transform(reduced[rest])
    return coords


@contextlib.contextmanager
def _torch_threads_kept() -> Iterator[None]:
    """Numba (under UMAP) starts its OpenMP pool and so changes torch's intra-op thread count
    (1 -> 2 on this machine), after which every model forward ran ~5x slower: put it back."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_clusters(clusters: int | str | None, n_points: int | None = None) -> int | str | None:
    """``None``, ``"auto"`` or a whole number K >= 2 (below the number of points)."""
    if clusters is None or clusters == "auto":
        return clusters
    plain = isinstance(clusters, (int, np.integer)) and not isinstance(clusters, bool)
    if not plain and not (isinstance(clusters, str) and re.fullmatch(r"\s*[0-9]+\s*", clusters)):
        raise NeuroMagicsError(f"--clusters must be a number of clusters or auto (digits 0-9; got {clusters!r}).")
    k = int(clusters)
    if k < 2:
        raise NeuroMagicsError(f"--clusters must be at least 2 (got {k}).")
    if n_points is not None and k > n_points:
        raise NeuroMagicsError(f"--clusters {k} is more than the {n_points} points: ask for fewer clusters.")
    return k


def project_activations(
    activations: Activations,
    *,
    method: str = "pca",
    clusters: int | str | None = None,
    seed: int = 0,
    bar=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per layer: the aligned 2-D map, PCA explained variance and clusters. ``bar`` (a ProgressBar)
    is told what runs and advanced once per layer. A KeyboardInterrupt after the first layer
    keeps the layers finished so far (the arrays are cut to them)."""
    check_choice("method", method, METHODS)
    vectors = activations.vectors
    n_layers, n_points = vectors.shape[:2]
    if n_points < 3:
        raise NeuroMagicsError(f"A projection needs at least 3 points, got {n_points}: give more text.")
    coords = np.zeros((n_layers, n_points, 2))
    explained = np.zeros((n_layers, 2), dtype=np.float32)
    labels = None if clusters is None else np.zeros((n_layers, n_points), dtype=np.int32)
    for k, step in enumerate(activations.steps):
        try:
            _map_layer(vectors[k], k, step, method, clusters, seed, coords, explained, labels, bar)
        except KeyboardInterrupt:
            if k == 0:
                raise
            coords, explained = coords[:k], explained[:k]
            labels = None if labels is None else labels[:k]
            break
    return coords.astype(np.float32), explained, labels


def _map_layer(vectors: np.ndarray, k: int, step: int, method: str, clusters, seed: int, coords: np.ndarray,
               explained: np.ndarray, labels: np.ndarray | None, bar) -> None:
    """Fill layer ``k`` of ``coords`` / ``explained`` / ``labels`` (aligned onto layer ``k - 1``)."""
    n_points = len(vectors)
    what = method.upper() if method != "tsne" else "t-SNE"
    if method == "umap" and n_points > UMAP_FIT_POINTS:
        what += f" (fit on {UMAP_FIT_POINTS} of {n_points} points)"
    if bar is not None:
        bar.set_description(f"{what} layer {step}")
    scores, ratio = pca_2d(vectors, REDUCED_DIMS if method != "pca" or clusters is not None else 2)
    explained[k, :min(2, len(ratio))] = ratio[:2]
    if method == "pca":
        layer_map = scores[:, :2]
    else:
        layer_map = embed(scores, method, seed, init=None if k == 0 or method != "umap" else coords[k - 1])
    if layer_map.shape[1] < 2:
        layer_map = np.pad(layer_map, ((0, 0), (0, 2 - layer_map.shape[1])))
    coords[k] = layer_map if k == 0 else align(coords[k - 1], layer_map)
    if labels is not None:
        if bar is not None:
            bar.set_description(f"{'HDBSCAN' if clusters == 'auto' else 'k-means'} layer {step}")
        labels[k] = cluster(scores, clusters, seed)
    if bar is not None:
        bar.update()


@with_lock
def project(
    subject: Subject,
    texts: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    *,
    steps: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    site: str = "resid_post",
    method: str = "pca",
    unit: str = "token",
    pooling: str = "mean",
    clusters: int | str | None = None,
    color: str | None = None,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> ProjectionResult:
    """Map the activations of ``texts`` at program ``steps`` to 2-D, one aligned map per step.

    ``texts`` default to the built-in bilingual demo (English / French, labelled). ``unit``
    is ``"token"`` (one point per token) or ``"text"`` (one per text: its ``pooling``,
    ``"mean"`` or ``"last"`` token). ``method`` is ``"pca"``, ``"umap"`` or ``"tsne"``;
    ``clusters`` a K for k-means or ``"auto"`` for HDBSCAN. ``steps`` are positions in
    the current program (``"all"``, ``"6,12,18"``, ``"10-20"`` or a list; default all); ``layers``
    is their old spelling, accepted only under the identity program (where a step is its block). ``color`` is what the
    map colours first (default: the cluster when clustering, else the label). Ctrl-C after the
    first step is mapped returns the steps finished so far (``result.interrupted``).
    ``workers``: capture on that many Ray workers (at ``ray_address``, else a local cluster),
    each with its own copy of the model; the activations are the same.
    """
    check_workers(subject, workers, ray_address)
    check_choice("method", method, METHODS)
    check_choice("unit", unit, UNITS)
    check_choice("pooling", pooling, TEXT_POOLING)
    check_seed(seed)
    if texts is None:
        if labels is not None:
            raise NeuroMagicsError("Labels were given without texts: give both, or neither for the bilingual demo.")
        texts, labels = demo_texts()
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise NeuroMagicsError("No texts: give one text per line (optionally label<TAB>text).")
    if unit == "text" and len(texts) < 3:
        raise NeuroMagicsError(f"A projection needs at least 3 points, got {len(texts)} texts: give more text.")
    labels = [""] * len(texts) if labels is None else [str(label) for label in labels]
    if len(labels) != len(texts):
        raise NeuroMagicsError(f"{len(labels)} labels for {len(texts)} texts: give one label per text.")
    clusters = check_clusters(clusters)
    color = color or ("cluster" if clusters is not None else "label")
    check_choice("color", color, COLORS)
    if color == "cluster" and clusters is None:
        raise NeuroMagicsError("Colouring by cluster needs clusters: add --clusters K or --clusters auto.")
    steps = parse_steps(explicit_layer_word(subject.program, layers, steps, old="--layers", new="--steps"), subject)

    with ProgressBar(len(texts) + len(steps), f"activations ({site})", "item", enabled=progress) as bar:
        activations = collect(subject, texts, steps, site=site, unit="token" if unit == "token" else pooling,
                              on_batch=bar.update, workers=workers, ray_address=ray_address)
        check_clusters(clusters, activations.vectors.shape[1])
        coords, explained, cluster_labels = project_activations(activations, method=method, clusters=clusters,
                                                                seed=seed, bar=bar)
    interrupted = len(coords) < len(steps)
    metadata = run_metadata(subject, texts, labels=labels, site=site, steps=steps[:len(coords)], method=method,
                            unit=unit, interrupted=interrupted,
                            pooling=pooling if unit == "text" else None, clusters=clusters, seed=seed,
                            alignment="orthogonal Procrustes onto the previous layer")
    return ProjectionResult(
        texts=texts, labels=labels, text_tokens=activations.text_tokens, text_index=activations.text_index,
        position=activations.position, steps=activations.steps[:len(coords)], blocks=activations.blocks[:len(coords)],
        site=site, unit=unit,
        method=method, coords=coords, explained=explained, clusters=cluster_labels, color=color, metadata=metadata,
    )


# -- the bilingual demo: is content shared across languages? ---------------------------------


@dataclass(kw_only=True, repr=False, eq=False)
class LanguageSimilarityResult(Result):
    """Per layer, the mean cosine of same-content / other-language text pairs (``across``)
    and of other-content / same-language pairs (``within``). ``across > within`` means the
    layer represents what a sentence says more than the language it is said in."""

    kind: ClassVar[str] = "language_similarity"

    steps: list[int]
    across: np.ndarray  # [layers] float32
    within: np.ndarray  # [layers] float32
    pairs: list[list[str]]
    site: str
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        self.across = np.asarray(self.across, dtype=np.float32)
        self.within = np.asarray(self.within, dtype=np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"across": self.across, "within": self.within}

    def _fields(self) -> dict[str, Any]:
        return {"steps": self.steps, "pairs": self.pairs, "site": self.site}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> LanguageSimilarityResult:
        return cls(**fields, **arrays, metadata=metadata)

    def to_numpy(self) -> np.ndarray:
        """``[2, layers]``: same-content/other-language, then other-content/same-language."""
        return np.stack([self.across, self.within])

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "same_content_other_language": self.across,
                             "other_content_same_language": self.within})

    def __repr__(self) -> str:
        best = int(np.argmax(self.across - self.within))
        return (f"LanguageSimilarityResult({len(self.pairs)} pairs, {self.site}: largest margin at step "
                f"{self.steps[best]}, same content {self.across[best]:.3f} vs same language {self.within[best]:.3f})")


def pair_cosines(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """Mean cosine of matching rows of ``first`` and ``second`` (same content, other language),
    and of distinct rows within each (other content, same language)."""
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    a, b = unit(first.astype(np.float64)), unit(second.astype(np.float64))
    across = float(np.mean(np.sum(a * b, axis=1)))
    n = len(a)
    off_diagonal = ~np.eye(n, dtype=bool)
    within = float(np.mean([(a @ a.T)[off_diagonal].mean(), (b @ b.T)[off_diagonal].mean()]))
    return across, within


@with_lock
def language_similarity(
    subject: Subject,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    steps: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    site: str = "resid_post",
    pooling: str = "mean",
    progress: bool = True,
) -> LanguageSimilarityResult:
    """Per program step (default all; ``layers`` is the old spelling, identity program only),
    cosine of translations against cosine of different sentences in one language (``pairs``
    default to the built-in English / French demo)."""
    check_choice("pooling", pooling, TEXT_POOLING)
    pairs = [tuple(map(str, pair)) for pair in (bilingual_pairs() if pairs is None else pairs)]
    if len(pairs) < 2 or any(len(pair) != 2 for pair in pairs):
        raise NeuroMagicsError("Give at least two (text, translation) pairs.")
    steps = parse_steps(explicit_layer_word(subject.program, layers, steps, old="--layers", new="--steps"), subject)
    texts = [a for a, _ in pairs] + [b for _, b in pairs]

    with ProgressBar(len(texts), f"activations ({site})", "text", enabled=progress) as bar:
        activations = collect(subject, texts, steps, site=site, unit=pooling, on_batch=bar.update)
    n = len(pairs)
    values = np.array([pair_cosines(layer[:n], layer[n:]) for layer in activations.vectors])
    return LanguageSimilarityResult(
        steps=steps, across=values[:, 0], within=values[:, 1], pairs=[list(p) for p in pairs], site=site,
        metadata=run_metadata(subject, texts, site=site, steps=steps, pooling=pooling),
    )
