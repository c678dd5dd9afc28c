"""The projection scatter's axis titles: the share of the activations' variance along each drawn axis,
checked against numpy on planted activations (also on a later step, whose map is turned to follow)."""

from types import SimpleNamespace

import numpy as np
import pytest

from neuro_magics.analyses.projection import align, pca_2d
from neuro_magics.widgets.projection_axes import axis_variance_shares, projection_axis_titles

pytest.importorskip("sklearn")


def planted_activations(seed: int) -> np.ndarray:
    """300 points in 6-d with unequal spreads along a random orthonormal basis, shifted off the origin."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    spreads = np.array([6.0, 3.0, 2.0, 1.0, 0.5, 0.2])
    return (rng.normal(size=(300, 6)) * spreads) @ basis.T + np.array([5.0, -2.0, 0.0, 1.0, 3.0, -4.0])


def numpy_share(vectors: np.ndarray, layer_map: np.ndarray) -> np.ndarray:
    """Variance along each map axis over the activations' total variance, by hand."""
    return layer_map.var(axis=0) / vectors.var(axis=0).sum()


def test_axis_shares_equal_numpy_on_the_first_and_a_turned_step():
    first, second = planted_activations(0), planted_activations(1)
    map0, ratio0 = pca_2d(first)
    angle = np.deg2rad(35.0)  # the previous map turned in its plane, so Procrustes turns step 2 off its PCs
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scores1, ratio1 = pca_2d(second)
    map1 = align(map0 @ turn, scores1)
    assert not np.allclose(np.abs(map1), np.abs(scores1), atol=1e-3)  # really turned, not only a sign flip
    np.testing.assert_allclose(axis_variance_shares(map0, ratio0), numpy_share(first, map0), rtol=1e-6)
    np.testing.assert_allclose(axis_variance_shares(map1, ratio1), numpy_share(second, map1), rtol=1e-6)
    result = SimpleNamespace(method="pca", steps=[4, 9], coords=np.stack([map0, map1]).astype(np.float32),
                             explained=np.stack([ratio0, ratio1]).astype(np.float32))
    titles = projection_axis_titles(result)
    x0, y0 = numpy_share(first, map0)
    x1, y1 = numpy_share(second, map1)
    assert titles[0] == [f"PC1: {x0:.1%} of variance", f"PC2: {y0:.1%} of variance"]
    assert titles[1][0].endswith(f": {x1:.1%} of variance") and "turned" in titles[1][0]
    assert titles[1][1] == f"axis 2: {y1:.1%} of variance"


def test_a_non_pca_map_claims_no_variance():
    result = SimpleNamespace(method="umap", steps=[1, 2, 3], coords=np.zeros((3, 5, 2)), explained=np.zeros((3, 2)))
    titles = projection_axis_titles(result)
    assert len(titles) == 3 and titles[2][1] == "UMAP 2" and "variance" not in " ".join(titles[0])


def test_the_nine_most_frequent_categories_get_colours_the_rest_none():
    from neuro_magics.widgets.colors import category_slots

    counts = [3, 12, 1, 7, 9, 2, 11, 5, 4, 10, 6, 8]  # code c appears counts[c] times, counts shuffled
    codes = np.array([c for c, n in enumerate(counts) for _ in range(n)][::-1] + [-1, -1])
    by_count = sorted(range(12), key=lambda c: -counts[c])
    assert category_slots(codes) == {c: slot for slot, c in enumerate(by_count[:9])}


def test_the_figure_colours_the_same_nine_tokens_and_greys_the_rest():
    from neuro_magics.analyses.projection import ProjectionResult
    from neuro_magics.widgets.colors import NONE_COLOUR, STOPS

    counts = [3, 12, 1, 7, 9, 2, 11, 5, 4, 10, 6, 8]  # token t{c} appears counts[c] times
    tokens = [f" t{c}" for c, n in enumerate(counts) for _ in range(n)]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(tokens))
    tokens = [tokens[i] for i in order]
    n = len(tokens)
    result = ProjectionResult(
        texts=["".join(tokens)], labels=[""], text_tokens=[tokens], text_index=np.zeros(n, np.int32),
        position=np.arange(n, dtype=np.int32), steps=[2], blocks=[2], site="resid_post", unit="token", method="pca",
        coords=rng.normal(size=(1, n, 2)).astype(np.float32), explained=np.array([[0.5, 0.2]]), metadata={"model": "m"})
    figure = result.figure(color="token")
    by_count = sorted(range(12), key=lambda c: -counts[c])
    assert [trace.name for trace in figure.data] == [f"␣t{c}" for c in by_count[:9]] + ["other (3 values)"]
    assert [trace.marker.color for trace in figure.data] == list(STOPS["categorical"][:9]) + [NONE_COLOUR]
    assert len(figure.data[-1].x) == sum(counts[c] for c in by_count[9:])
