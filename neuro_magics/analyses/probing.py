"""Linear probes: what the activations at each step of the layer program say about a label.

Per step (a *step* is a position in the layer program, a *block* an original layer: under
``0,1,2,3,2,3,4`` step 5 runs block 3), a linear classifier reads one vector per text (mean or
last token of the stream, read after the sink prefix, see ``activations``): scikit-learn's
LogisticRegression on standardised features (``"logreg"``), or the mass-mean probe
(``"massmean"``: the direction between the class means, nearest class mean decides).
Accuracy is cross-validated (stratified folds); the same probe on shuffled labels is the
control: a step "knows" the label only where accuracy clears the control.

``direction[step]`` is the probe's normal (for logreg mapped back to raw activation
units), pointing to the second class and scaled so that its length is the distance of the
class means along it. ``steer`` adds at a block's input (every occurrence of it):
``nm.steer(m, block=probe.block_of(s), coef=1, vector=probe.direction[s])`` moves a text, on
average, from one class mean to the other along the probe. With the default site
``resid_pre`` and the identity program (step = block) the direction lives exactly where
``steer`` adds its vector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.distributed import check_workers
from ..core.errors import NeuroMagicsError, check_seed
from ..core.paths import read_user_text
from ..core.programs import explicit_layer_word
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock
from ..core.activations import check_choice, collect, parse_steps

KINDS = ("logreg", "massmean")
POOLING = ("mean", "last")
_TASKS = Path(__file__).parent.parent / "probes"


def tasks() -> list[str]:
    """The built-in labelled tasks (``probes/probe_<task>.jsonl``)."""
    return sorted(path.stem.removeprefix("probe_") for path in _TASKS.glob("probe_*.jsonl"))


def read_labelled(path: str | Path) -> tuple[list[str], list[str], list[str] | None]:
    """Texts, labels and groups from a JSONL file: one ``{"text": ..., "label": ...}`` per line,
    with an optional ``"group"``: texts of one group (a minimal pair, say) are never split
    between training and test folds, or a probe could score by recognising the pair."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NeuroMagicsError(f"No file {str(path)!r}: give a JSONL file of {{\"text\": ..., \"label\": ...}} lines.")
    lines = read_user_text(path, "UTF-8 JSON lines").splitlines()
    texts, labels, groups = [], [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, label = record["text"], record["label"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise NeuroMagicsError(f"{path}:{number} is not a {{\"text\": ..., \"label\": ...}} JSON line.") from None
        if label is None or str(label).strip() == "":
            raise NeuroMagicsError(f"{path}:{number} has an empty label: every text needs one.")
        if not isinstance(text, str) or not text.strip():
            raise NeuroMagicsError(f"{path}:{number}: \"text\" must be a non-empty text in quotes, not {text!r}.")
        texts.append(text)
        labels.append(str(label))
        groups.append(None if record.get("group") is None else str(record["group"]))
    if any(group is None for group in groups) and not all(group is None for group in groups):
        odd = next(k for k, group in enumerate(groups) if (group is None) != (groups[0] is None))
        raise NeuroMagicsError(f"{path}: some lines have a \"group\" and some do not (text {odd + 1} differs from "
                               "the first): give every line one, or none.")
    return texts, labels, None if not groups or groups[0] is None else groups


def task_data(task: str) -> tuple[list[str], list[str], list[str] | None]:
    """Texts, labels and groups of a built-in task."""
    if task not in tasks():
        raise NeuroMagicsError(f"Unknown task {task!r}: use one of {', '.join(tasks())}, or --data FILE.jsonl.")
    return read_labelled(_TASKS / f"probe_{task}.jsonl")


class Directions(Mapping):
    """``directions[step]``: a probe's steering vector at that program step (float32, ``[d_model]``)."""

    def __init__(self, steps: Sequence[int], vectors: np.ndarray, what: str):
        self._vectors = {int(step): vectors[k] for k, step in enumerate(steps)}
        self._what = what

    def __getitem__(self, step: int) -> np.ndarray:
        if step not in self._vectors:
            raise NeuroMagicsError(f"No {self._what} at step {step}: this probe has steps {list(self._vectors)}.")
        return self._vectors[step]

    def __iter__(self):
        return iter(self._vectors)

    def __len__(self) -> int:
        return len(self._vectors)

    def __repr__(self) -> str:
        return f"<{self._what} at steps {list(self._vectors)}>"


@dataclass(kw_only=True, repr=False, eq=False)
class ProbeResult(Result):
    """Probe accuracy per program step, its shuffled-label control, and the fitted probes.

    ``steps`` are the program positions read, ``blocks`` the original blocks they ran (equal
    under the identity program). ``weights[k, c]`` / ``bias[k, c]`` (``k``: the k-th of ``steps``) score class ``c`` in raw activation units (one
    row, for the second class, when there are two); ``class_means[k, c]`` are the class
    means. ``accuracy`` and ``control`` are cross-validated means; ``fold_accuracy`` /
    ``fold_control`` each fold's. ``groups`` (when the data had them) kept each group in one fold.
    """

    kind: ClassVar[str] = "probe"

    texts: list[str]
    labels: list[str]
    classes: list[str]
    steps: list[int]
    blocks: list[int]
    site: str
    pooling: str
    probe_kind: str
    fold_accuracy: np.ndarray  # [steps, folds] float32
    fold_control: np.ndarray  # [steps, folds] float32
    weights: np.ndarray  # [steps, rows, features] float32
    bias: np.ndarray  # [steps, rows] float32
    class_means: np.ndarray  # [steps, classes, features] float32
    metadata: dict[str, Any]
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        for name in ("fold_accuracy", "fold_control", "weights", "bias", "class_means"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32))

    @property
    def accuracy(self) -> np.ndarray:
        """Cross-validated accuracy per step."""
        return self.fold_accuracy.mean(1)

    @property
    def control(self) -> np.ndarray:
        """The same probe's accuracy on shuffled labels, per step (chance level, measured)."""
        return self.fold_control.mean(1)

    @property
    def best_step(self) -> int:
        """The program step where accuracy clears the control by most."""
        return self.steps[int(np.argmax(self.accuracy - self.control))]

    @property
    def best_block(self) -> int:
        """The original block that ran at ``best_step``."""
        return self.block_of(self.best_step)

    @property
    def best_layer(self) -> int:
        """``best_step`` where it is also the block (the probed steps ran blocks of the same
        index); elsewhere "layer" would name two things, so it is refused."""
        if self.steps != self.blocks:
            raise NeuroMagicsError(f"best_layer is ambiguous: this probe read steps {self.steps}, which ran blocks "
                                   f"{self.blocks}; use best_step or best_block.")
        return self.best_step

    def block_of(self, step: int) -> int:
        """The original block that ran at program step ``step`` when the probe read it."""
        if step not in self.steps:
            raise NeuroMagicsError(f"No step {step}: this probe has steps {self.steps}.")
        return self.blocks[self.steps.index(step)]

    @property
    def direction(self) -> Directions:
        """Per step, the vector from the first class towards the second (two classes only)."""
        if len(self.classes) != 2:
            raise NeuroMagicsError(f"This probe has {len(self.classes)} classes: use direction_to(label) for "
                                   f"one of {', '.join(self.classes)}.")
        return self.direction_to(self.classes[1])

    def direction_to(self, label: str) -> Directions:
        """Per step, the vector towards ``label``'s class from the others, along the probe's
        normal, as long as the distance of the class means along it."""
        if label not in self.classes:
            raise NeuroMagicsError(f"No class {label!r}: this probe has {', '.join(self.classes)}.")
        c = self.classes.index(label)
        if len(self.classes) == 2:
            normals = self.weights[:, 0] * (1.0 if c == 1 else -1.0)
        else:
            normals = self.weights[:, c]
        units = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
        others = np.delete(self.class_means, c, axis=1).mean(1)
        gaps = np.sum((self.class_means[:, c] - others) * units, axis=-1, keepdims=True)
        return Directions(self.steps, (units * gaps).astype(np.float32), f"direction to {label!r}")

    def decision(self, vectors: np.ndarray) -> np.ndarray:
        """Probe scores of activations ``[steps, points, features]``: ``[steps, points]`` (two
        classes: towards the second) or ``[steps, points, classes]``."""
        scores = np.einsum("lpf,lcf->lpc", np.asarray(vectors, dtype=np.float32), self.weights) + self.bias[:, None]
        return scores[..., 0] if len(self.classes) == 2 else scores

    def scores(self, subject: Subject, texts: Sequence[str]) -> np.ndarray:
        """Run ``texts`` through ``subject`` as it is now (interventions included) and score them
        with the probe at every step: ``[steps, texts]`` (or ``[steps, texts, classes]``)."""
        activations = collect(subject, list(texts), self.steps, site=self.site, unit=self.pooling)
        return self.decision(activations.vectors)

    # -- Result protocol -------------------------------------------------------------

    _ARRAYS = ("fold_accuracy", "fold_control", "weights", "bias", "class_means")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._ARRAYS}

    def _fields(self) -> dict[str, Any]:
        return {"texts": self.texts, "labels": self.labels, "classes": self.classes, "steps": self.steps,
                "blocks": self.blocks, "site": self.site, "pooling": self.pooling, "probe_kind": self.probe_kind,
                "groups": self.groups}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> ProbeResult:
        return cls(**fields, **{name: arrays[name] for name in cls._ARRAYS}, metadata=metadata)

    def to_numpy(self) -> np.ndarray:
        """``[2, steps]``: accuracy, then the shuffled-label control."""
        return np.stack([self.accuracy, self.control])

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "block": self.blocks, "accuracy": self.accuracy,
                             "control": self.control, "selectivity": self.accuracy - self.control})

    def __repr__(self) -> str:
        k = self.steps.index(self.best_step)
        return (f"ProbeResult({self.probe_kind} probe of {'/'.join(self.classes)} on {len(self.texts)} texts, "
                f"{self.site} at {len(self.steps)} steps: best step {self.best_step} (block {self.best_block}), accuracy "
                f"{self.accuracy[k]:.3f} vs control {self.control[k]:.3f})")


# -- fitting ---------------------------------------------------------------------------------


def fit_probe(kind: str, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[rows, features]`` and bias ``[rows]`` in raw units; one row for two classes
    (positive: the second class), else one per class (argmax decides)."""
    x = x.astype(np.float64)
    if kind == "massmean":
        means = np.stack([x[y == c].mean(0) for c in range(n_classes)])
        weights, bias = means, -0.5 * np.sum(means**2, axis=1)  # nearest class mean
        if n_classes == 2:
            weights, bias = weights[1:] - weights[:1], bias[1:] - bias[:1]
        return weights, bias
    from sklearn.linear_model import LogisticRegression

    centre, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(max_iter=2000, random_state=seed).fit((x - centre) / scale, y)
    weights = model.coef_ / scale
    return weights, model.intercept_ - weights @ centre


def predict(weights: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    scores = x.astype(np.float64) @ weights.T + bias
    return (scores[:, 0] > 0).astype(int) if weights.shape[0] == 1 else scores.argmax(1)


def cross_validate(kind: str, x: np.ndarray, y: np.ndarray, n_classes: int, folds: int, seed: int = 0,
                   groups: Sequence[str] | None = None) -> np.ndarray:
    """Accuracy on each held-out stratified fold (whole groups per fold when given)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y)
    else:
        splits = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups)
    accuracies = []
    for train, test in splits:
        weights, bias = fit_probe(kind, x[train], y[train], n_classes, seed)
        accuracies.append(float(np.mean(predict(weights, bias, x[test]) == y[test])))
    return np.asarray(accuracies)


def check_labels(labels: Sequence[str], folds: int, groups: Sequence[str] | None = None) -> list[str]:
    """The classes, after refusing labels a cross-validated probe cannot learn from."""
    if folds < 2:
        raise NeuroMagicsError(f"--cv must be at least 2 folds (got {folds}).")
    classes, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    if len(classes) < 2:
        raise NeuroMagicsError(f"All texts have the label {classes[0]!r}: a probe needs at least two classes.")
    if counts.min() < folds:
        rare = classes[int(np.argmin(counts))]
        raise NeuroMagicsError(f"Class {rare!r} has {counts.min()} texts, fewer than the {folds} cross-validation "
                               f"folds: add texts or lower --cv.")
    if groups is not None and len(set(groups)) < folds:
        raise NeuroMagicsError(f"The data has {len(set(groups))} groups, fewer than the {folds} cross-validation "
                               "folds: add groups or lower --cv.")
    return [str(c) for c in classes]


def probe_activations(vectors: np.ndarray, labels: Sequence[str], *, kind: str = "logreg", folds: int = 5,
                      seed: int = 0, groups: Sequence[str] | None = None, steps: Sequence[int] | None = None,
                      bar=None) -> dict[str, np.ndarray]:
    """Fit and cross-validate a probe per step of ``vectors[step, text, feature]``, plus the
    shuffled-label control (one fixed permutation of the labels)."""
    check_choice("probe kind", kind, KINDS)
    classes = check_labels(labels, folds, groups)
    y = np.searchsorted(classes, np.asarray(labels, dtype=str))
    shuffled = np.random.default_rng(seed).permutation(y)
    out = {"fold_accuracy": [], "fold_control": [], "weights": [], "bias": [], "class_means": []}
    for k in range(vectors.shape[0]):
        if bar is not None:
            bar.set_description(f"{kind} probe step {k if steps is None else steps[k]}")
        x = vectors[k]
        out["fold_accuracy"].append(cross_validate(kind, x, y, len(classes), folds, seed, groups))
        out["fold_control"].append(cross_validate(kind, x, shuffled, len(classes), folds, seed, groups))
        weights, bias = fit_probe(kind, x, y, len(classes), seed)
        out["weights"].append(weights)
        out["bias"].append(bias)
        out["class_means"].append(np.stack([x[y == c].mean(0) for c in range(len(classes))]))
        if bar is not None:
            bar.update()
    return {"classes": classes, **{name: np.stack(values).astype(np.float32) for name, values in out.items()}}


@with_lock
def probe(
    subject: Subject,
    data: str | Path | Sequence[tuple[str, str]] | None = None,
    *,
    task: str | None = None,
    steps: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    kind: str = "logreg",
    cv: int = 5,
    site: str = "resid_pre",
    pooling: str = "mean",
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> ProbeResult:
    """A linear probe per program step for a labelled set of texts.

    ``steps``: positions in the current layer program (``"all"``, ``"6,12,18"``, ``"10-20"`` or
    a list; default all). ``layers`` is the old spelling, accepted only under the identity
    program, where a step is its block.

    ``data`` is a JSONL file of ``{"text", "label"}`` lines (optionally ``"group"``, see
    ``read_labelled``) or a list of ``(text, label)`` or ``(text, label, group)``;
    ``task`` a built-in task instead (``tasks()``: sentiment, truth, language). ``kind`` is
    ``"logreg"`` or ``"massmean"``; ``cv`` the number of stratified folds; each text is one
    vector: the ``pooling`` (``"mean"`` or ``"last"``) of its tokens at ``site``. ``workers``:
    capture on that many Ray workers (at ``ray_address``, else a local cluster), each with its
    own copy of the model; the vectors are the same.
    """
    check_workers(subject, workers, ray_address)
    check_choice("probe kind", kind, KINDS)
    check_choice("pooling", pooling, POOLING)
    check_seed(seed)
    if (data is None) == (task is None):
        raise NeuroMagicsError(f"Give exactly one of --data FILE.jsonl or --task ({', '.join(tasks())}).")
    if task is not None:
        texts, labels, groups = task_data(task)
    elif isinstance(data, (str, Path)):
        texts, labels, groups = read_labelled(data)
    else:
        rows = list(data)
        widths = {len(row) if isinstance(row, (tuple, list)) else 0 for row in rows}
        if not widths <= {2} and not widths <= {3}:
            raise NeuroMagicsError("Give the data as (text, label) or (text, label, group) rows, all alike.")
        bad = [row[0] for row in rows if not isinstance(row[0], str) or not row[0].strip()]
        if bad:
            raise NeuroMagicsError(f"Every row's text must be a non-empty string, not {bad[0]!r}.")
        texts, labels = [row[0] for row in rows], [str(row[1]) for row in rows]
        groups = [str(row[2]) for row in rows] if widths == {3} else None
    if not texts:
        raise NeuroMagicsError("No labelled texts: give one {\"text\": ..., \"label\": ...} per line.")
    if any(label.strip() == "" for label in labels):
        raise NeuroMagicsError("A text has an empty label: every text needs one.")
    check_labels(labels, cv, groups)
    steps = parse_steps(explicit_layer_word(subject.program, layers, steps, old="--layers", new="--steps"), subject)

    with ProgressBar(len(texts) + len(steps), f"activations ({site})", "item", enabled=progress) as bar:
        activations = collect(subject, texts, steps, site=site, unit=pooling, on_batch=bar.update,
                              workers=workers, ray_address=ray_address)
        fitted = probe_activations(activations.vectors, labels, kind=kind, folds=cv, seed=seed, groups=groups,
                                   steps=steps, bar=bar)
    metadata = run_metadata(subject, texts, labels=labels, task=task, data=str(data) if isinstance(data, (str, Path))
                            else None, site=site, steps=steps, kind=kind, cv=cv, pooling=pooling, seed=seed)
    classes = fitted.pop("classes")
    return ProbeResult(texts=texts, labels=labels, classes=classes, steps=steps, blocks=activations.blocks, site=site,
                       pooling=pooling, probe_kind=kind, groups=groups, metadata=metadata, **fitted)
