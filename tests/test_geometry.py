"""Projections, clusters and probes (issue 12), against independent computations: numpy's SVD,
HF's own hidden states, planted clusters and a planted linear direction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import neuro_magics as nm
from neuro_magics.core.activations import Activations, collect
from neuro_magics.core.reading import CONTRAST_PREFIX
from neuro_magics.analyses.probing import ProbeResult, probe_activations
from neuro_magics.analyses.projection import (
    ProjectionResult, cluster, pair_cosines, pca_2d, project_activations,
)
from tiny_models import tiny_model, tiny_tokenizer


@pytest.fixture
def llama():
    return nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


def synthetic(vectors: np.ndarray) -> Activations:
    layers, points = vectors.shape[:2]
    return Activations(vectors=vectors.astype(np.float32), steps=list(range(layers)), blocks=list(range(layers)),
                       site="resid_post", unit="mean", text_index=np.arange(points, dtype=np.int32),
                       position=np.full(points, -1, dtype=np.int32), text_tokens=[[]] * points)


def svd_scores(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u[:, :2] * s[:2]


def same_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float) -> bool:
    return all(min(np.abs(a[:, k] - b[:, k]).max(), np.abs(a[:, k] + b[:, k]).max()) < atol for k in range(a.shape[1]))


# -- PCA and alignment ---------------------------------------------------------------------------


def test_pca_equals_a_numpy_svd():
    """Oracle: numpy's SVD of the centred data (scores U S, up to each axis's sign). The data has
    a large mean, so a PCA that forgets to centre fails (seen: scores = x @ components.T)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)) * np.linspace(5, 0.5, 20) + 40.0
    scores, ratio = pca_2d(x)
    assert same_up_to_sign(scores, svd_scores(x), atol=1e-8)
    singular = np.linalg.svd(x - x.mean(0), compute_uv=False)
    np.testing.assert_allclose(ratio, singular[:2] ** 2 / np.sum(singular**2), rtol=1e-10)


def test_maps_are_pca_and_later_layers_are_only_rotated_onto_earlier_ones():
    """Oracle: numpy's SVD per layer. Layer 0's map is its PCA; layer 1 (the same points, rotated in
    feature space, so PCA may flip its axes) lands exactly on layer 0 after alignment; layer 2's
    map keeps every distance of its own PCA (Procrustes is an isometry). Seen failing with the
    alignment left out (layer 1 flipped) and with a scaled alignment."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 16)) * np.linspace(4, 0.2, 16)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    other = rng.normal(size=(200, 16)) * np.linspace(3, 0.2, 16)
    coords, explained, clusters = project_activations(synthetic(np.stack([base, -base @ rotation, other])))
    assert clusters is None
    assert same_up_to_sign(coords[0], svd_scores(base), atol=1e-4)
    np.testing.assert_allclose(coords[1], coords[0], atol=1e-4)
    expected = svd_scores(other)
    distances = np.linalg.norm(coords[2][:, None] - coords[2][None], axis=-1)
    np.testing.assert_allclose(distances, np.linalg.norm(expected[:, None] - expected[None], axis=-1), atol=1e-3)
    assert explained.shape == (3, 2) and np.all(explained[:, 0] >= explained[:, 1])


# -- clusters ------------------------------------------------------------------------------------


def planted_blobs(seed: int = 2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 30)) * 10
    truth = np.repeat(np.arange(4), 60)
    return centres[truth] + rng.normal(size=(240, 30)), truth


def same_partition(found: np.ndarray, truth: np.ndarray) -> bool:
    """Each planted cluster is exactly one found cluster, and no two share one (hand-made contingency)."""
    pairs = {(int(t), int(f)) for t, f in zip(truth, found)}
    return len(pairs) == len(set(truth)) == len({f for _, f in pairs})


@pytest.mark.parametrize("k", [4, "auto"])
def test_clustering_recovers_planted_clusters(k):
    """Oracle: the planted membership of four well-separated blobs. Seen failing with K - 1 clusters."""
    x, truth = planted_blobs()
    assert same_partition(cluster(x, k), truth)


def test_clusters_of_a_projection_follow_the_planted_blobs_at_every_layer():
    x, truth = planted_blobs(3)
    _, _, clusters = project_activations(synthetic(np.stack([x, 2 * x + 1])), clusters=4)
    assert all(same_partition(layer, truth) for layer in clusters)


# -- probes --------------------------------------------------------------------------------------


def planted_direction(seed: int = 4):
    """Layer 0 holds no label information; layer 1 holds it along one direction ``v``."""
    rng = np.random.default_rng(seed)
    labels = np.array(["calm", "loud"] * 100)
    y = (labels == "loud").astype(float)
    v = rng.normal(size=16)
    v /= np.linalg.norm(v)
    noise = rng.normal(size=(2, 200, 16))
    return np.stack([noise[0], noise[1] + np.outer(6 * y - 3, v)]), labels, v


@pytest.mark.parametrize("kind", ["logreg", "massmean"])
def test_a_planted_direction_is_found_and_the_shuffled_control_is_at_chance(kind):
    """Oracle: the planted direction. Held-out accuracy is 1 where it is planted and near chance
    where it is not; on shuffled labels (the control) near chance everywhere; the probe's direction
    points along v towards the second class. Seen failing with the control fitted on the true
    labels, with the class-mean gap reversed, and with the decision threshold flipped."""
    vectors, labels, v = planted_direction()
    fitted = probe_activations(vectors, labels, kind=kind, folds=5)
    result = ProbeResult(texts=[""] * 200, labels=list(labels), classes=fitted.pop("classes"), steps=[0, 1],
                         blocks=[0, 1], site="resid_pre", pooling="mean", probe_kind=kind, metadata={}, **fitted)
    assert result.classes == ["calm", "loud"]
    assert result.accuracy[1] == 1.0
    assert result.accuracy[0] < 0.75
    assert np.all(np.abs(result.control - 0.5) < 0.2)
    direction = result.direction[1]
    assert direction @ v / np.linalg.norm(direction) > 0.9
    scores = result.decision(vectors)
    assert np.all((scores[1] > 0) == (labels == "loud"))


def test_the_mass_mean_direction_is_the_difference_of_the_class_means():
    """Oracle: the class means by hand (the direction's length is the mean gap along it)."""
    vectors, labels, _ = planted_direction(5)
    fitted = probe_activations(vectors, labels, kind="massmean", folds=4)
    result = ProbeResult(texts=[""] * 200, labels=list(labels), classes=fitted.pop("classes"), steps=[3, 7],
                         blocks=[3, 7], site="resid_pre", pooling="mean", probe_kind="massmean", metadata={}, **fitted)
    by_hand = vectors[1][labels == "loud"].mean(0) - vectors[1][labels == "calm"].mean(0)
    np.testing.assert_allclose(result.direction[7], by_hand, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.direction_to("calm")[7], -by_hand, rtol=1e-4, atol=1e-5)
    with pytest.raises(nm.NeuroMagicsError, match="No direction to 'loud' at step 1"):
        result.direction[1]


# -- activations from the model ------------------------------------------------------------------


def test_batched_activations_equal_hf_hidden_states_of_each_text_alone(llama):
    """Oracle: HF's ``output_hidden_states`` of each text (with the prefix) run alone, unpadded.
    The batch pads left; seen failing when the prefix was not cut (positions off by one)."""
    texts = ["a cat sat", "hello there, world", "xy"]
    acts = collect(llama, texts, [0, 2], site="resid_post", unit="token", batch_size=2)
    means = collect(llama, texts, [0, 2], site="resid_post", unit="mean")
    for t, text in enumerate(texts):
        ids = llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = llama.model(ids, output_hidden_states=True).hidden_states
        own = acts.text_index == t
        assert acts.text_tokens[t] == list(text)
        for k, step in enumerate([0, 2]):
            expected = hidden[step + 1][0, 1:].numpy()
            np.testing.assert_allclose(acts.vectors[k, own], expected, atol=1e-5)
            np.testing.assert_allclose(means.vectors[k, t], expected.mean(0), atol=1e-5)


def test_project_runs_end_to_end_and_saves(llama, tmp_path):
    texts = ["the cat", "a dog ran", "one two three"]
    result = nm.project(llama, texts, ["x", "y", "x"], layers="1,3", clusters=2, progress=False)
    assert result.coords.shape == (2, sum(map(len, texts)), 2) and result.clusters.shape == (2, result.n_points)
    assert result.point_labels[:8] == ["x"] * 7 + ["y"] and result.point_tokens[:3] == ["t", "h", "e"]
    assert result.context(9) == "a [[d]]og ran"  # context stays within the point's own text
    assert result.context(16 + 6) == "one tw[[o]] three"
    loaded = nm.load_result(result.save(tmp_path / "map"))
    assert isinstance(loaded, ProjectionResult) and loaded.texts == texts
    np.testing.assert_array_equal(loaded.coords, result.coords)
    np.testing.assert_array_equal(loaded.clusters, result.clusters)
    assert len(result.to_pandas()) == 2 * result.n_points


def test_texts_as_points_with_umap_and_tsne(llama):
    """Also: UMAP's numba leaves torch's thread count as it was (it raised it, and forwards ran ~5x slower)."""
    texts = [f"text number {k}" for k in range(24)]
    threads = torch.get_num_threads()
    for method in ("umap", "tsne"):
        result = nm.project(llama, texts, layers="2,3", unit="text", method=method, progress=False)
        assert result.coords.shape == (2, 24, 2) and np.isfinite(result.coords).all()
        assert list(result.position) == [-1] * 24 and result.point_tokens[5] == texts[5]
        assert torch.get_num_threads() == threads


def test_pair_cosines_by_hand():
    """Oracle: orthonormal sentences whose translations are themselves: across 1, within 0."""
    eye = np.eye(3)
    assert pair_cosines(eye, eye) == (1.0, 0.0)
    across, within = pair_cosines(np.array([[1.0, 0], [0, 1]]), np.array([[1.0, 1], [1, 1]]))
    assert across == pytest.approx(np.sqrt(0.5)) and within == pytest.approx(0.5)


def test_language_similarity_and_probe_results_save(llama, tmp_path):
    similarity = nm.language_similarity(llama, layers="0-3", progress=False)
    assert similarity.across.shape == similarity.within.shape == (4,)
    assert np.array_equal(nm.load_result(similarity.save(tmp_path / "sim")).across, similarity.across)
    result = nm.probe(llama, task="language", layers="1,2", cv=3, progress=False)
    assert result.classes == ["en", "fr"] and result.accuracy.shape == (2,)
    loaded = nm.load_result(result.save(tmp_path / "probe"))
    np.testing.assert_array_equal(loaded.weights, result.weights)
    np.testing.assert_array_equal(loaded.direction[2], result.direction[2])


def test_groups_keep_minimal_pairs_in_one_fold(tmp_path):
    """Each pair shares one group; no test fold may hold one half of a pair (hand check on the
    splitter the probe uses)."""
    from sklearn.model_selection import StratifiedGroupKFold

    rows = [json.loads(line) for line in open(nm.__path__[0] + "/probes/probe_truth.jsonl")]
    groups = [row["group"] for row in rows]
    labels = [row["label"] for row in rows]
    for _, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(rows, labels, groups):
        held = {groups[i] for i in test}
        assert sum(groups.count(g) for g in held) == len(test)


# -- bad input: one line each --------------------------------------------------------------------


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("call, match", [
    (lambda s, p: nm.probe(s, [("a b", "x"), ("c d", "x"), ("e f", "x")], cv=2), "at least two classes"),
    (lambda s, p: nm.probe(s, write_jsonl(p / "d.jsonl", [{"text": "ab", "label": "x"}, {"text": "cd"}])),
     r"d.jsonl:2 is not a"),
    (lambda s, p: nm.probe(s, [("ab", "x"), ("cd", "")], cv=2), "empty label"),
    (lambda s, p: nm.probe(s, [("ab", "x"), ("cd", "y"), ("ef", "x"), ("gh", "y")], cv=3),
     "has 2 texts, fewer than the 3 cross-validation folds"),
    (lambda s, p: nm.probe(s, task="sentiment", kind="svm"), "Unknown probe kind 'svm'"),
    (lambda s, p: nm.probe(s, task="weather"), "Unknown task 'weather'"),
    (lambda s, p: nm.probe(s), "Give exactly one of --data"),
    (lambda s, p: nm.probe(s, task="language", cv=1), "at least 2 folds"),
    (lambda s, p: nm.project(s, ["ab", "cd", "ef"], method="lda"), "Unknown method 'lda'"),
    (lambda s, p: nm.project(s, ["ab", "cd", "ef"], unit="word"), "Unknown unit 'word'"),
    (lambda s, p: nm.project(s, ["ab", "cd", "ef"], clusters=1), "at least 2"),
    (lambda s, p: nm.project(s, ["ab", "cd"], ["x"]), "1 labels for 2 texts"),
    (lambda s, p: nm.project(s, ["ab", "cd", "ef"], steps="2-9"), "--steps '2-9'"),
    (lambda s, p: nm.project(s, ["ab", "", "ef"]), "non-empty"),
    (lambda s, p: nm.project(s, ["a"], unit="text"), "at least 3 points"),
])
def test_bad_input_is_one_line_and_changes_nothing(llama, tmp_path, call, match):
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = llama.model(ids).logits
    with pytest.raises(nm.NeuroMagicsError, match=match) as info:
        call(llama, tmp_path)
    assert "\n" not in str(info.value)
    with torch.no_grad():
        assert torch.equal(llama.model(ids).logits, before)
    assert llama.program.is_identity and not llama.interventions


# -- the real model ------------------------------------------------------------------------------


@pytest.mark.integration
def test_steering_along_a_probe_direction_moves_its_prediction(default_subject):
    """Oracle: the probe's own reading of the steered model. Adding the sentiment probe's layer-10
    direction at block 10 raises the layer-11 probe's "positive" score on neutral texts;
    subtracting it lowers it. Seen failing with the direction reversed (class-mean gap negated)."""
    m = default_subject
    sentiment = nm.probe(m, task="sentiment", layers="10,11", progress=False)
    assert sentiment.classes == ["negative", "positive"] and sentiment.accuracy.min() > 0.85
    neutral = ["The meeting is on Tuesday.", "The box is on the table.", "He walked to the station.",
               "The report has four pages."]
    plain = sentiment.scores(m, neutral)[1]
    moved = {}
    for sign in (1, -1):
        steering = nm.steer(m, layer=10, coef=sign * 2.0, vector=sentiment.direction[10])
        try:
            moved[sign] = sentiment.scores(m, neutral)[1]
        finally:
            m.remove_intervention(steering)
    assert np.all(moved[1] > plain) and np.all(moved[-1] < plain)
    assert np.all(moved[1] - moved[-1] > 1.0)


def test_activations_that_would_not_fit_are_refused_before_any_block_runs(llama, monkeypatch):
    import neuro_magics.core.memory as scanning  # where every analysis reads free memory

    monkeypatch.setattr(scanning, "available_memory", lambda: 1_000)
    calls = []
    handles = [block.register_forward_pre_hook(lambda *a: calls.append(1)) for block in llama.blocks]
    try:
        with pytest.raises(nm.NeuroMagicsError, match=r"4 steps x 10 points x 32 features need .* fewer steps"):
            nm.project(llama, ["hello", "world"], progress=False)
    finally:
        for handle in handles:
            handle.remove()
    assert not calls


def test_groups_must_be_on_every_line_or_none(llama, tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [{"text": "ab", "label": "x", "group": 1}, {"text": "cd", "label": "y"}])
    with pytest.raises(nm.NeuroMagicsError, match=r"text 2 differs from the first"):
        nm.probe(llama, path, cv=2)


# -- views ---------------------------------------------------------------------------------------


def test_the_scatter_gets_each_layer_at_unit_scale_and_selection_reaches_the_result(llama):
    """The widget's float16 coordinates are the map's, per layer shifted and scaled alike on both
    axes (by hand), and a selection in the widget lands in ``result.selected``."""
    from neuro_magics.widgets.views import projection_widget

    result = nm.project(llama, ["the cat sat", "a dog ran off"], ["x", "y"], layers="1,3", clusters=2, progress=False)
    widget = projection_widget(result)
    for k in range(2):
        xy = result.coords[k].astype(np.float64)
        centre = (xy.max(0) + xy.min(0)) / 2
        expected = (xy - centre) / np.abs(xy - centre).max()
        np.testing.assert_allclose(widget.coords[k].astype(np.float64), expected, atol=1e-3)
    assert [c["name"] for c in widget.colorings] == ["label", "cluster", "position", "token"]
    assert widget.color_by == "cluster"
    assert [len(pair) for pair in widget.axis_titles] == [2, 2] and widget.axis_titles[0][0].startswith("PC1: ")
    widget.selected = [3, 1, 4]
    assert result.selected == [3, 1, 4]


def test_the_figure_paints_labels_in_the_widget_palette(llama):
    from neuro_magics.widgets import colors

    result = nm.project(llama, ["ab", "cd", "ef"], ["x", "y", "x"], unit="text", progress=False)
    figure = result.figure(color="label")
    assert [trace.name for trace in figure.data] == ["x", "y"]
    assert [trace.marker.color for trace in figure.data] == list(colors.STOPS["categorical"][:2])
    assert figure.layout.xaxis.title.text.endswith("of variance")  # the last step: its turned PCA plane
    assert len(result.figure(color="position").data) == 1
    with pytest.raises(nm.NeuroMagicsError, match="no clusters"):
        result.figure(color="cluster")


def test_ctrl_c_keeps_the_layers_already_mapped(llama, monkeypatch):
    """An interrupt while the third layer is mapped returns the first two, marked interrupted; one
    during the first layer propagates."""
    import neuro_magics.analyses.projection as projection

    real, calls = projection.pca_2d, []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(projection, "pca_2d", interrupt_third)
    result = nm.project(llama, ["the cat sat", "a dog"], layers="0-3", clusters=2, progress=False)
    assert result.interrupted and result.steps == [0, 1]
    assert result.coords.shape[0] == result.clusters.shape[0] == result.explained.shape[0] == 2
    calls.clear()
    calls.extend([1, 1])
    with pytest.raises(KeyboardInterrupt):
        nm.project(llama, ["the cat sat", "a dog"], layers="0-3", progress=False)


# -- alignment, explained variance and probe offsets on asymmetric cases --------------------------------


def test_alignment_undoes_a_general_rotation_about_the_centroid():
    """Oracle: a planted rotation by 35 degrees (not its own transpose) and a shift. Aligning the
    rotated map onto the original gives the original moved to the rotated map's centroid (fails
    with the Procrustes rotation transposed, or the centroid of the wrong map kept)."""
    from neuro_magics.analyses.projection import align

    rng = np.random.default_rng(5)
    previous = rng.normal(size=(50, 2)) * [3.0, 1.0] + [4.0, -2.0]
    angle = np.deg2rad(35)
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    current = (previous - previous.mean(0)) @ rotation + [10.0, 7.0]
    np.testing.assert_allclose(align(previous, current), previous - previous.mean(0) + [10.0, 7.0], atol=1e-9)
    reflected = current * [1.0, -1.0]
    np.testing.assert_allclose(align(previous, reflected), previous - previous.mean(0) + [10.0, -7.0], atol=1e-9)


@pytest.mark.parametrize("clusters", [None, 2])
def test_explained_variance_ratios_are_the_first_two_by_hand(clusters):
    """Oracle: numpy's SVD of each layer's centred data: the ratios of the first and second
    components (with clusters the PCA keeps 50 components, and the first two are reported)
    (fails with the ratios shifted by one)."""
    rng = np.random.default_rng(8)
    layers = np.stack([rng.normal(size=(120, 60)) * np.linspace(6, 0.1, 60) + 3.0,
                       rng.normal(size=(120, 60)) * np.linspace(2, 1, 60)])
    _, explained, _ = project_activations(synthetic(layers), clusters=clusters)
    for k, x in enumerate(layers):
        values = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
        np.testing.assert_allclose(explained[k], values[:2] / values.sum(), rtol=1e-4)


def test_project_reports_each_layers_explained_variance_from_hf_hidden_states(llama):
    """Oracle: HF's hidden states of each text alone (after the sink prefix), their PCA by numpy."""
    texts = ["the cat sat", "a dog ran off", "one two"]
    result = nm.project(llama, texts, layers="0,2", progress=False)  # the last HF entry is normed: not 3
    for k, step in enumerate([0, 2]):
        rows = []
        for text in texts:
            ids = llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                rows.append(llama.model(ids, output_hidden_states=True).hidden_states[step + 1][0, 1:].double().numpy())
        x = np.concatenate(rows)
        values = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
        np.testing.assert_allclose(result.explained[k], values[:2] / values.sum(), rtol=1e-3)
        if k == 0:  # the first map is that PCA itself (later ones are aligned onto it)
            assert same_up_to_sign(result.coords[0], svd_scores(x), atol=1e-3)


def shifted_classes(seed: int = 6):
    """Two classes far from the origin (mean 20 on every feature), the second farther along v."""
    rng = np.random.default_rng(seed)
    labels = np.array(["calm", "loud"] * 60)
    y = (labels == "loud").astype(float)
    v = rng.normal(size=8)
    v /= np.linalg.norm(v)
    x = rng.normal(size=(120, 8)) + 20.0 + np.outer(2.5 * y, v)
    return x, labels, y


def test_the_mass_mean_bias_puts_the_boundary_at_the_midpoint_of_shifted_classes():
    """Oracle: the class means by hand, ``w = m1 - m0`` and ``b = -(|m1|^2 - |m0|^2) / 2``; the decision
    is 0 at the midpoint of the means and says which mean is nearer (fails with the bias's sign
    flipped: the classes do not sit symmetrically about the origin)."""
    x, labels, y = shifted_classes()
    fitted = probe_activations(x[None], labels, kind="massmean", folds=3)
    m0, m1 = x[y == 0].mean(0), x[y == 1].mean(0)
    np.testing.assert_allclose(fitted["weights"][0, 0], m1 - m0, rtol=1e-5)
    np.testing.assert_allclose(fitted["bias"][0, 0], -(m1 @ m1 - m0 @ m0) / 2, rtol=1e-4)
    result = ProbeResult(texts=[""] * 120, labels=list(labels), classes=fitted.pop("classes"), steps=[0], blocks=[0],
                         site="resid_pre", pooling="mean", probe_kind="massmean", metadata={}, **fitted)
    assert abs(result.decision(((m0 + m1) / 2)[None, None])[0, 0]) < 1e-2
    nearer = np.linalg.norm(x - m1, axis=1) < np.linalg.norm(x - m0, axis=1)
    np.testing.assert_array_equal(result.decision(x[None])[0] > 0, nearer)


def test_the_logistic_probe_equals_scikit_learns_pipeline_on_shifted_data():
    """Oracle: scikit-learn's StandardScaler + LogisticRegression pipeline on the same data: the
    decision values in raw units (the bias mapped back through the scaling) and every fold's
    held-out accuracy with the same stratified splits (fails with the bias's centring term's sign
    flipped, or the accuracy measured on the training folds)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, labels, y = shifted_classes(9)
    x[:, 3] *= 30.0  # unequal scales: the scaling matters
    fitted = probe_activations(x[None], labels, kind="logreg", folds=4)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)).fit(x, y)
    result = ProbeResult(texts=[""] * 120, labels=list(labels), classes=fitted.pop("classes"), steps=[0], blocks=[0],
                         site="resid_pre", pooling="mean", probe_kind="logreg", metadata={}, **fitted)
    np.testing.assert_allclose(result.decision(x[None])[0], pipeline.decision_function(x), rtol=1e-3, atol=1e-3)
    splits = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
    expected = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)),
                               x, y, cv=splits)
    np.testing.assert_allclose(result.fold_accuracy[0], expected, atol=1e-6)
    assert 0.6 < expected.mean() < 1.0  # not a trivially separable case
    shuffled = np.random.default_rng(0).permutation(y)
    control = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)),
                              x, shuffled, cv=splits)
    np.testing.assert_allclose(result.fold_control[0], control, atol=1e-6)


def test_the_probe_table_best_layer_and_repr_by_hand():
    """Oracle: planted fold accuracies: accuracy and control are fold means, selectivity their
    difference, and the best layer the one with the largest selectivity, not the largest accuracy
    (fails with the best layer taken by accuracy alone, or the control's folds averaged wrongly)."""
    fold_accuracy = np.array([[1.0, 1.0, 0.8], [0.9, 0.8, 0.7], [0.5, 0.5, 0.6]])
    fold_control = np.array([[0.9, 1.0, 0.8], [0.5, 0.4, 0.6], [0.5, 0.5, 0.5]])
    result = ProbeResult(texts=["a"] * 6, labels=["x", "y"] * 3, classes=["x", "y"], steps=[2, 5, 7], blocks=[2, 4, 7],
                         site="resid_pre", pooling="mean", probe_kind="logreg", fold_accuracy=fold_accuracy,
                         fold_control=fold_control, weights=np.ones((3, 1, 4)), bias=np.zeros((3, 1)),
                         class_means=np.zeros((3, 2, 4)), metadata={})
    frame = result.to_pandas()
    np.testing.assert_allclose(frame["accuracy"], [14 / 15, 0.8, 8 / 15], rtol=1e-6)
    np.testing.assert_allclose(frame["control"], [0.9, 0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(frame["selectivity"], [14 / 15 - 0.9, 0.3, 8 / 15 - 0.5], rtol=1e-5)
    assert list(frame["step"]) == [2, 5, 7] and list(frame["block"]) == [2, 4, 7]
    assert result.best_step == 5 and result.best_block == 4
    with pytest.raises(nm.NeuroMagicsError, match="best_layer is ambiguous: .* use best_step or best_block"):
        result.best_layer
    assert "best step 5 (block 4), accuracy 0.800 vs control 0.500" in repr(result)


def test_language_similarity_by_hand_from_hf_hidden_states(llama):
    """Oracle: mean-pooled HF hidden states (after the sink prefix) of each text alone. Pairs whose
    'translation' is the text itself have cosine 1 across; within is the mean cosine of different
    texts, computed here (fails with the two measures swapped, or a layer off)."""
    texts = ["the cat sat", "a dog ran off", "one two", "zz top"]
    result = nm.language_similarity(llama, [(t, t) for t in texts], layers="0,2", progress=False)
    np.testing.assert_allclose(result.across, 1.0, atol=1e-6)
    for k, step in enumerate([0, 2]):
        means = []
        for text in texts:
            ids = llama.tokenizer(CONTRAST_PREFIX + text, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                means.append(llama.model(ids, output_hidden_states=True).hidden_states[step + 1][0, 1:].double().mean(0))
        unit = torch.nn.functional.normalize(torch.stack(means), dim=-1)
        cosines = unit @ unit.T
        within = float(cosines[~torch.eye(4, dtype=torch.bool)].mean())
        assert result.within[k] == pytest.approx(within, abs=1e-5) and within < 0.999
    assert "largest margin at step" in repr(result)
