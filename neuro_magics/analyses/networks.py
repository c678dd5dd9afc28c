"""Functional brain networks of an LLM: group ICA over every block's MLP output.

After "Brain-Inspired Exploration of Functional Networks and Key Neurons in Large Language
Models" (arXiv 2502.20408). The signals are the MLP block's output (``mlp_out``: the module
the architecture adapter names ``mlp``, e.g. ``down_proj``'s output on Llama-style models,
Gemma2's post-feedforward norm) of the chosen blocks (original layers, read under the identity program), for every token of every text, laid
side by side into a tokens x (L * d_model) matrix; texts are stacked (group ICA). FastICA
(scikit-learn, fixed ``random_state``) splits it into ``k`` independent time courses
(``sources``, one value per token) and their spatial maps (the mixing columns), z-scored
across neurons. A network's neurons have ``z > threshold``; the key neurons are their union.

Where this deviates from the paper, and why:

- Each text's first token is left out of the signals (``skip_first``): many models park an
  outsized "attention sink" state there (the default model's MLP output at that token has
  norm ~23,000 in layer 11, against ~35 elsewhere), and with it one component takes 99% of
  the variance and means only "first token".
- Each neuron's signal is z-scored over tokens (``standardize``; the paper's code offers it
  as ``preprocessing``): otherwise the last layers, whose outputs are 10x larger, hold
  nearly every key neuron.
- ICA signs and order are arbitrary: each network is flipped so that its map's heavy tail is
  positive (positive skew, as fMRI toolboxes do), and networks are sorted by the variance
  they explain, so that ``z > threshold`` and "network 0" mean the same thing on every run.
- Wider signals than ``REDUCE_ABOVE`` features are first reduced to ``k`` dimensions by a
  randomized PCA (the projection FastICA's own whitening computes, without forming a
  features x features covariance); the maps are mapped back through it.
- On a GPU the same FastICA runs in torch there (``decompose(..., device=)``; ``networks``
  uses the model's device): scikit-learn's algorithm step for step (SVD whitening to unit
  variance, parallel FastICA with logcosh, symmetric decorrelation, its tolerance and its
  ``w_init`` drawn from ``random_state``), so on the same data it gives sklearn's maps. No
  library offers FastICA on the GPU with sklearn's numbers.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.distributed import ShardedWork, check_workers, run_units
from ..core.errors import NeuroMagicsError, NeuroMagicsWarning, check_seed
from ..core.programs import LayerProgram, explicit_layer_word, parse_ranges
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, prepare, run
from ..core.subject import Subject, with_lock
from ..core.corpus import Corpus, load_corpus

DEFAULT_COMPONENTS = 10
DEFAULT_THRESHOLD = 3.6
#: Signals wider than this many features are reduced by randomized PCA before FastICA.
REDUCE_ABOVE = 2048
#: Padded tokens per forward while capturing: bounds the captured activations per batch.
BATCH_TOKENS = 4096
#: Maps agree as one network when their masks' intersection over union exceeds this (the paper's template match).
MATCH_IOU = 0.2


# -- the decomposition ---------------------------------------------------------------------------------


def decompose(signals: np.ndarray, components: int, *, random_state: int = 0, reduce: bool | None = None,
              max_iter: int = 1000, device: str | torch.device | None = None
              ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """FastICA of ``signals`` [tokens, features] (centred here, else used as given).

    Returns the z-scored maps [k, features] (each oriented so its heavy tail is positive,
    sorted by explained variance), the sources [tokens, k] (unit variance, same signs), and
    facts about the fit. ``reduce`` (default: wider than ``REDUCE_ABOVE``) runs a
    randomized PCA to ``k`` dimensions first. ``device``: run it in torch there (a GPU);
    None: scikit-learn on the CPU."""
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.extmath import randomized_svd

    n_tokens, n_features = signals.shape
    if components < 1:
        raise NeuroMagicsError(f"--components must be at least 1 (got {components}).")
    if n_tokens <= components:
        raise NeuroMagicsError(
            f"{n_tokens} tokens are too few for {components} components: give more text (or fewer --components).")
    if n_features < components:
        raise NeuroMagicsError(f"{n_features} neurons are too few for {components} components: use fewer --components.")
    reduce = n_features > REDUCE_ABOVE if reduce is None else reduce
    if device is not None:
        mixing, sources, iterations, converged = _torch_fastica(signals, components, random_state, reduce, max_iter,
                                                                torch.device(device))
        return _oriented(mixing, sources, {"reduced": bool(reduce), "iterations": iterations, "converged": converged,
                                           "backend": f"torch ({torch.device(device).type})"})
    centred = signals - signals.mean(axis=0, dtype=np.float64).astype(signals.dtype)
    # float64 and the SVD whitening: sklearn's "eigh" whitening of float32 data whose
    # principal axes differ in scale by 100x loses the sources (seen on planted networks).
    ica = FastICA(components, whiten="unit-variance", whiten_solver="svd", random_state=random_state,
                  max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if reduce:
            left, scale, right = randomized_svd(centred, components, n_oversamples=max(10, components),
                                                n_iter=4, random_state=random_state)
            sources = ica.fit_transform((left * scale).astype(np.float64))
            mixing = right.T @ ica.mixing_  # back from the k principal axes to the neurons
        else:
            sources = ica.fit_transform(centred.astype(np.float64))
            mixing = ica.mixing_
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return _oriented(mixing, sources, {"reduced": bool(reduce), "iterations": int(ica.n_iter_),
                                       "converged": converged, "backend": "scikit-learn"})


def _oriented(mixing: np.ndarray, sources: np.ndarray, facts: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Z-scored maps with their heavy tail positive, sorted by explained variance, and the sources to match."""
    maps = _zscore(mixing.T.astype(np.float64))
    skew = (maps ** 3).mean(axis=1)
    signs = np.where(skew < 0, -1.0, 1.0)
    maps, sources = maps * signs[:, None], sources * signs[None, :]
    order = np.argsort(-(mixing ** 2).sum(axis=0), kind="stable")  # unit-variance sources: |a|^2 is the variance
    return maps[order].astype(np.float32), sources[:, order].astype(np.float32), facts


#: scikit-learn FastICA's default tolerance on the change of the unmixing rows.
ICA_TOLERANCE = 1e-4


@torch.no_grad()
def _torch_fastica(signals: np.ndarray, components: int, random_state: int, reduce: bool, max_iter: int,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """scikit-learn's ``FastICA(whiten="unit-variance", whiten_solver="svd")`` in float64 torch on
    ``device``: (mixing [features, k], sources [tokens, k], iterations, converged)."""
    data = torch.as_tensor(signals, device=device, dtype=torch.float64)
    data = data - data.mean(dim=0)
    axes = None
    if reduce:  # a randomized PCA to k dimensions, as the CPU path does (torch's own randomized SVD)
        torch.manual_seed(random_state)
        left, scale, axes = torch.svd_lowrank(data, q=components + max(10, components), niter=4)
        data, axes = left[:, :components] * scale[:components], axes[:, :components]
        data = data - data.mean(dim=0)
    n_tokens = data.shape[0]
    u, d, _ = torch.linalg.svd(data.T, full_matrices=False)
    u = u * torch.sign(u[0])
    whitening = (u / d).T[:components]  # [k, features]
    white = whitening @ data.T * math.sqrt(n_tokens)  # [k, tokens]
    start = np.random.RandomState(random_state).normal(size=(components, components))
    unmixing = _symmetric_decorrelation(torch.as_tensor(start, device=device, dtype=torch.float64))
    converged = False
    for iteration in range(1, max_iter + 1):
        squashed = torch.tanh(unmixing @ white)  # logcosh: g = tanh, g' = 1 - tanh^2
        slope = (1 - squashed**2).mean(dim=1)
        updated = _symmetric_decorrelation(squashed @ white.T / n_tokens - slope[:, None] * unmixing)
        change = ((updated * unmixing).sum(dim=1).abs() - 1).abs().max()
        unmixing = updated
        if change < ICA_TOLERANCE:
            converged = True
            break
    sources = (unmixing @ whitening @ data.T).T
    spread = sources.std(dim=0, unbiased=False, keepdim=True)
    sources = sources / spread
    mixing = torch.linalg.pinv((unmixing / spread.T) @ whitening)  # [features or k, k]
    if axes is not None:
        mixing = axes @ mixing
    return mixing.cpu().numpy(), sources.cpu().numpy(), iteration, converged


def _symmetric_decorrelation(matrix: torch.Tensor) -> torch.Tensor:
    """``(W W^T)^{-1/2} W``: the rows made orthonormal without favouring any."""
    values, vectors = torch.linalg.eigh(matrix @ matrix.T)
    values = values.clamp_min(torch.finfo(matrix.dtype).tiny)
    return (vectors / values.sqrt()) @ vectors.T @ matrix


def _zscore(rows: np.ndarray) -> np.ndarray:
    spread = rows.std(axis=1, keepdims=True)
    return (rows - rows.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)


def iou(masks: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """Intersection over union between every pair of boolean masks ``[a, ...]`` x ``[b, ...]``
    (``others`` default: ``masks`` itself); 0 where both are empty."""
    a = masks.reshape(len(masks), -1).astype(np.float64)
    b = a if others is None else others.reshape(len(others), -1).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise NeuroMagicsError(f"Cannot compare networks over {a.shape[1]} neurons with networks over {b.shape[1]}.")
    both = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - both
    return np.divide(both, union, out=np.zeros_like(both), where=union > 0)


# -- the result ----------------------------------------------------------------------------------------


@dataclass(repr=False, eq=False)
class NetworksResult(Result):
    """Functional networks of a model; its repr is the network gallery."""

    kind = "networks"

    maps: np.ndarray  # [k, L, d] float32: each network's z-scored spatial map
    sources: np.ndarray  # [tokens, k] float32: each network's time course
    text_index: np.ndarray  # [tokens] int32: which text each signal row comes from
    positions: np.ndarray  # [tokens] int32: its position in that text
    blocks: list[int]  # the original block of each map row
    threshold: float
    texts: list[str]
    labels: list[str]  # per text: its genre, or ""
    text_pieces: list[list[str]]  # per text: every token as text (the first one included)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: [L, d] float32: each neuron's mean squared MLP output over the corpus (its energy; what
    #: the energy-matched lesion control matches). None in results saved before it existed.
    energy: np.ndarray | None = None
    _subject: Any = field(default=None, repr=False)  # weakref to the model the networks were found on

    @property
    def subject(self) -> Subject | None:
        """The model these networks were found on, while it is loaded (None after loading from a file)."""
        return None if self._subject is None else self._subject()

    # -- shape -----------------------------------------------------------------------------

    @property
    def n_networks(self) -> int:
        return self.maps.shape[0]

    @property
    def d_model(self) -> int:
        return self.maps.shape[2]

    # -- masks -----------------------------------------------------------------------------

    @property
    def network_masks(self) -> np.ndarray:
        """[k, L, d] bool: each network's neurons (z above the threshold)."""
        return self.maps > self.threshold

    @property
    def key_mask(self) -> np.ndarray:
        """[L, d] bool: the key neurons, the union of all networks."""
        return self.network_masks.any(axis=0)

    @property
    def counts(self) -> np.ndarray:
        """[k, L] int: each network's neurons per block."""
        return self.network_masks.sum(axis=2)

    @property
    def key_counts(self) -> np.ndarray:
        """[L] int: key neurons per block."""
        return self.key_mask.sum(axis=1)

    def mask_of(self, network: int | Sequence[int] | str = "key") -> np.ndarray:
        """[L, d] bool mask of ``"key"`` (all networks), one network, or several."""
        if isinstance(network, str):
            if network.strip() == "key":
                return self.key_mask
            picked = _network_list(network, self.n_networks)
        else:
            picked = [network] if isinstance(network, (int, np.integer)) else list(network)
        for k in picked:
            if not 0 <= int(k) < self.n_networks:
                raise NeuroMagicsError(f"Network {k} does not exist: this result has networks 0-{self.n_networks - 1}.")
        return self.network_masks[[int(k) for k in picked]].any(axis=0)

    @property
    def layers(self) -> list[int]:
        """The old name of ``blocks`` (unambiguous here: the maps are always read under the identity program)."""
        return self.blocks

    def dims_by_block(self, network: int | Sequence[int] | str = "key") -> dict[int, list[int]]:
        """Original block index -> the MLP-output dimensions of ``network`` there (every analysed block)."""
        mask = self.mask_of(network)
        return {block: np.flatnonzero(mask[row]).tolist() for row, block in enumerate(self.blocks)}

    def with_threshold(self, threshold: float) -> NetworksResult:
        """The same networks cut at another z threshold (no refit)."""
        _check_threshold(threshold, self.maps.shape[1] * self.d_model)
        return NetworksResult(self.maps, self.sources, self.text_index, self.positions, self.blocks, float(threshold),
                              self.texts, self.labels, self.text_pieces, {**self.metadata, "threshold": float(threshold)},
                              self.energy, self._subject)

    # -- comparing ---------------------------------------------------------------------------

    def iou(self, other: NetworksResult | None = None) -> np.ndarray:
        """[k, k'] intersection over union of the network masks, within this result or
        against ``other`` (same blocks and width): the paper's template similarity."""
        if other is not None and (other.blocks != self.blocks or other.d_model != self.d_model):
            raise NeuroMagicsError("The two results cover different blocks or widths: compare networks of the same model "
                                   "and --blocks.")
        return iou(self.network_masks, None if other is None else other.network_masks)

    def matches(self, other: NetworksResult, at: float = MATCH_IOU) -> list[tuple[int, int, float]]:
        """For each network here, its best match in ``other`` as ``(k, k', IoU)``, kept when IoU > ``at``."""
        overlap = self.iou(other)
        best = overlap.argmax(axis=1)
        return [(k, int(j), float(overlap[k, j])) for k, j in enumerate(best) if overlap[k, j] > at]

    # -- acting on the model -------------------------------------------------------------------

    def mask(self, network: int | Sequence[int] | str = "key", *, mode: str = "zero", value: float | None = None,
             subject: Subject | None = None, prompts: Sequence[str] | None = None):
        """Mask ``network`` on the model (it stays masked until ``%ablate --reset``) and return the
        before/after diff (``nm.compare``). Uses the model the networks were found on unless
        ``subject`` is given."""
        from .diffing import compare
        from .interventions import mask_network

        subject = subject or self.subject
        if subject is None:
            raise NeuroMagicsError("These networks are not attached to a loaded model: pass subject= (the model they "
                                   "were found on).")
        intervention = mask_network(subject, self, network, mode=mode, value=value, install=False)
        diff = compare(subject, lambda: intervention.applied(subject), prompts, label_after=f"mask network {network}")
        intervention.install(subject)
        return diff

    # -- what drives a network -------------------------------------------------------------------

    def top_tokens(self, network: int, n: int = 10, context: int = 6) -> list[dict[str, Any]]:
        """The ``n`` tokens where ``network``'s time course peaks, each with its text around it."""
        self.mask_of(network)  # checks the index
        values = self.sources[:, network]
        rows = np.argsort(-values, kind="stable")[:n]
        found = []
        for row in rows:
            text, position = int(self.text_index[row]), int(self.positions[row])
            pieces = self.text_pieces[text]
            found.append({
                "value": float(values[row]), "text_index": text, "position": position, "token": pieces[position],
                "before": "".join(pieces[max(0, position - context):position]),
                "after": "".join(pieces[position + 1:position + 1 + context]), "label": self.labels[text],
            })
        return found

    def time_course(self, network: int, text: int = 0) -> tuple[list[str], np.ndarray]:
        """The tokens of one text and ``network``'s source value at each (NaN where no signal was kept)."""
        self.mask_of(network)
        if not 0 <= text < len(self.texts):
            raise NeuroMagicsError(f"Text {text} does not exist: this result has texts 0-{len(self.texts) - 1}.")
        pieces = self.text_pieces[text]
        values = np.full(len(pieces), np.nan, dtype=np.float32)
        rows = np.flatnonzero(self.text_index == text)
        values[self.positions[rows]] = self.sources[rows, network]
        return pieces, values

    # -- Result protocol -------------------------------------------------------------------------

    def to_numpy(self) -> np.ndarray:
        """The z-scored maps, [networks, blocks, d_model]."""
        return self.maps

    def to_pandas(self):
        """One row per network neuron (network, block, dimension, z), strongest first."""
        import pandas as pd

        k, row, dim = np.nonzero(self.network_masks)
        frame = pd.DataFrame({"network": k, "block": np.asarray(self.blocks)[row], "dim": dim,
                              "z": self.maps[k, row, dim]})
        return frame.sort_values(["network", "z"], ascending=[True, False], ignore_index=True)

    def _arrays(self) -> dict[str, np.ndarray]:
        energy = {} if self.energy is None else {"energy": self.energy}
        return {"maps": self.maps, "sources": self.sources, "text_index": self.text_index, "positions": self.positions,
                **energy}

    def _fields(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "threshold": self.threshold, "texts": self.texts, "labels": self.labels,
                "text_pieces": self.text_pieces}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> NetworksResult:
        return cls(arrays["maps"], arrays["sources"], arrays["text_index"], arrays["positions"],
                   [int(block) for block in fields.get("blocks", fields.get("layers"))], float(fields["threshold"]), list(fields["texts"]),
                   list(fields["labels"]), [list(p) for p in fields["text_pieces"]], metadata, arrays.get("energy"))

    def __repr__(self) -> str:
        key = int(self.key_mask.sum())
        total = self.key_mask.size
        sizes = ", ".join(str(int(c)) for c in self.counts.sum(axis=1))
        return (f"NetworksResult({self.n_networks} networks over blocks {_span(self.blocks)} of "
                f"{self.metadata.get('model', '?')}, {len(self.sources)} tokens of {len(self.texts)} texts; "
                f"z > {self.threshold:g}: {key} key neurons ({100 * key / total:.2f}% of {total}); "
                f"sizes {sizes})")


def _span(blocks: Sequence[int]) -> str:
    return f"{blocks[0]}-{blocks[-1]}" if list(blocks) == list(range(blocks[0], blocks[-1] + 1)) else \
        ",".join(map(str, blocks))


def _network_list(spec: str, n_networks: int) -> list[int]:
    try:
        return parse_ranges(spec, n_networks, unit="network", owner="this result")
    except NeuroMagicsError as error:
        raise NeuroMagicsError(f"{error} Networks are numbered 0-{n_networks - 1}; or use key.") from None


def _check_threshold(threshold: float, n_neurons: int) -> None:
    """Refuse a threshold no map can pass: a z-scored vector of n values has max z <= sqrt(n - 1)."""
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or threshold <= 0:
        raise NeuroMagicsError(f"--threshold must be a positive number (got {threshold}).")
    ceiling = math.sqrt(max(n_neurons - 1, 0))
    if threshold >= ceiling:
        raise NeuroMagicsError(
            f"--threshold {threshold:g} leaves no key neuron: over {n_neurons} neurons no z-score can exceed "
            f"{ceiling:.3g}; use a lower threshold (the paper's is {DEFAULT_THRESHOLD}).")


# -- the analysis ----------------------------------------------------------------------------------------


def parse_blocks(spec: str | Sequence[int] | None, n_layers: int) -> list[int]:
    """Original blocks. ``None``: every block; ``"a:b"`` (half-open), ``"a-b"`` (inclusive), lists
    of them, or indices."""
    if spec is None:
        return list(range(n_layers))
    if isinstance(spec, str):
        blocks = parse_ranges(spec, n_layers)
    else:
        blocks = [int(block) for block in spec]
        bad = [block for block in blocks if not 0 <= block < n_layers]
        if bad or not blocks:
            raise NeuroMagicsError(f"Block {bad[0] if bad else 'list'} is out of range: this model has blocks "
                                   f"0-{n_layers - 1}.")
    return sorted(set(blocks))


@dataclass
class _Signals:
    """Which tokens of which texts feed the matrix."""

    ids: list[list[int]]  # per text: its token ids (cut to the context and the budget)
    first: int  # the first position kept in every text


def _select(subject: Subject, corpus: Corpus, max_tokens: int | None, skip_first: bool) -> tuple[list[int], _Signals]:
    """Texts taken in turn from each label (so a budget keeps the genres balanced) until
    ``max_tokens`` signal tokens; the text that crosses the budget is cut."""
    tokenizer = subject.tokenizer
    if tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer; networks need one to read the corpus.")
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(corpus.labels):
        by_label.setdefault(label, []).append(index)
    queues = list(by_label.values())
    order = [queue[k] for k in range(max(len(q) for q in queues)) for queue in queues if k < len(queue)]
    first = 1 if skip_first else 0
    limit = subject.context_length or 1 << 30
    chosen, ids, total = [], [], 0
    for index in order:
        row = list(tokenizer(corpus.texts[index])["input_ids"])[:limit]
        usable = len(row) - first
        if usable <= 0:
            continue
        if max_tokens is not None and total + usable > max_tokens:
            row = row[:first + max_tokens - total]
            usable = len(row) - first
        if usable > 0:
            chosen.append(index)
            ids.append(row)
            total += usable
        if max_tokens is not None and total >= max_tokens:
            break
    return chosen, _Signals(ids, first)


def _capture(subject: Subject, signals: _Signals, layers: list[int], progress: bool, workers: int | None = None,
             ray_address: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The [tokens, L * d] matrix of MLP outputs (float32, CPU), texts batched by length (on
    ``workers`` Ray workers when given), and which texts were read (all, unless Ctrl-C stopped
    the capture)."""
    lengths = [len(row) - signals.first for row in signals.ids]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    matrix = np.empty((int(offsets[-1]), len(layers) * subject.d_model), dtype=np.float32)
    order = sorted(range(len(signals.ids)), key=lambda t: len(signals.ids[t]))
    batches, current = [], []
    for text in order:
        if current and (len(current) + 1) * len(signals.ids[text]) > BATCH_TOKENS:
            batches.append(current)
            current = []
        current.append(text)
    if current:
        batches.append(current)
    units = [tuple((text, tuple(signals.ids[text])) for text in batch) for batch in batches]
    done = np.zeros(len(signals.ids), dtype=bool)
    bar = ProgressBar(int(offsets[-1]), "networks: capture", "token", enabled=progress)

    def record(unit: tuple[tuple[int, tuple[int, ...]], ...], blocks: list[np.ndarray]) -> None:
        for (text, _), block in zip(unit, blocks):
            matrix[offsets[text]:offsets[text + 1]] = block
            done[text] = True
        bar.update(sum(lengths[text] for text, _ in unit))

    try:
        run_units(subject, ShardedWork(_mlp_reader, (layers, signals.first)), units,
                  [len(unit) * len(unit[-1][1]) for unit in units], workers=workers, ray_address=ray_address,
                  on_result=record)
    except KeyboardInterrupt:
        pass
    finally:
        bar.close()
    return matrix, done


def _mlp_reader(subject: Subject, layers: list[int], first: int
                ) -> Callable[[tuple[tuple[int, tuple[int, ...]], ...]], list[np.ndarray]]:
    """A batch of ``(text, token ids)`` -> each text's ``[tokens, L * d]`` MLP outputs from
    position ``first`` on: what one process or a Ray worker runs."""
    program = LayerProgram.identity(subject.n_layers)
    capture = Capture(sites=("mlp_out",), steps=layers, device="cpu", dtype=torch.float32)

    @torch.no_grad()
    def read(batch: tuple[tuple[int, tuple[int, ...]], ...]) -> list[np.ndarray]:
        rows = [ids for _, ids in batch]
        input_ids, attention_mask = subject.left_padded(rows)
        width = input_ids.shape[1]
        output = run(subject, prepare(subject, input_ids, attention_mask), program=program,
                     stop=layers[-1] + 1, capture=capture, logits_at=None)
        states = output.captures["mlp_out"]  # [L, batch, width, d]
        blocks = []
        for row, ids in enumerate(rows):
            start = width - len(ids) + first
            blocks.append(states[:, row, start:].permute(1, 0, 2).reshape(width - start, -1).numpy())
        return blocks

    return read


@with_lock
def networks(
    subject: Subject,
    texts: str | Path | Sequence[str] | None = None,
    *,
    components: int = DEFAULT_COMPONENTS,
    threshold: float = DEFAULT_THRESHOLD,
    blocks: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    max_tokens: int | None = None,
    standardize: bool = True,
    skip_first: bool = True,
    random_state: int = 0,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> NetworksResult:
    """Find ``components`` functional networks in ``subject``'s MLP outputs on a corpus.

    ``texts``: ``None``/``"builtin"`` (the built-in five-genre corpus), ``"builtin:math,code"``,
    a ``.txt``/``.jsonl`` path, or a list of texts. ``blocks``: original blocks, ``"a:b"``/``"a-b"``
    (default all); ``layers`` is their old spelling, accepted only under the identity program. ``max_tokens`` caps the signal tokens (texts taken in turn from each genre).
    ``threshold``: the z above which a neuron belongs to a network. The capture runs the
    identity program (maps are per original block) with the active interventions on.
    Ctrl-C during the capture fits on the tokens read so far. ``workers``: read the corpus on
    that many Ray workers (at ``ray_address``, else a local cluster), each with its own copy of
    the model; the networks are the same.
    """
    if not isinstance(components, (int, np.integer)) or components < 1:
        raise NeuroMagicsError(f"--components must be a whole number of at least 1 (got {components}).")
    if max_tokens is not None and max_tokens < 1:
        raise NeuroMagicsError(f"--max-tokens must be at least 1 (got {max_tokens}).")
    check_workers(subject, workers, ray_address)
    check_seed(random_state)
    chosen_layers = parse_blocks(explicit_layer_word(subject.program, layers, blocks, old="--layers", new="--blocks"),
                                 subject.n_layers)
    _check_threshold(threshold, len(chosen_layers) * subject.d_model)
    corpus = load_corpus(texts)
    chosen, signals = _select(subject, corpus, max_tokens, skip_first)
    n_tokens = sum(len(row) - signals.first for row in signals.ids)
    if n_tokens <= components:
        raise NeuroMagicsError(
            f"{n_tokens} tokens are too few for {components} components: give more text (or fewer --components)"
            + (" or drop --max-tokens." if max_tokens is not None else "."))
    if len(chosen_layers) * subject.d_model < components:
        raise NeuroMagicsError(f"{len(chosen_layers) * subject.d_model} neurons are too few for {components} components.")
    metadata = run_metadata(
        subject, None, program=list(range(subject.n_layers)), corpus=corpus.name, n_texts=len(chosen),
        n_tokens=n_tokens, components=int(components), threshold=float(threshold), blocks=chosen_layers,
        max_tokens=max_tokens, standardize=standardize, skip_first=skip_first, random_state=random_state,
        site="mlp_out", module=subject.adapter.mlp,
    )
    matrix, done = _capture(subject, signals, chosen_layers, progress, workers, ray_address)
    rows_kept = np.repeat(done, [len(row) - signals.first for row in signals.ids])
    if not done.all():
        if rows_kept.sum() <= components:
            raise NeuroMagicsError(f"Interrupted after {int(rows_kept.sum())} tokens: too few for {components} components.")
        matrix = matrix[rows_kept]
        warnings.warn(NeuroMagicsWarning(f"Interrupted: fitting on the {len(matrix)} tokens of the texts read so far."))
        metadata["interrupted"] = True
    energy = _column_square_mean(matrix)
    if standardize:
        _standardize(matrix)
    maps, sources, facts = decompose(matrix, int(components), random_state=random_state,
                                     device=None if subject.device.type == "cpu" else subject.device)
    del matrix
    metadata.update(facts)
    if not facts["converged"]:
        warnings.warn(NeuroMagicsWarning(
            f"FastICA did not converge in {facts['iterations']} iterations: the networks may be unstable; try "
            "more text or another random_state."))
    text_index = np.repeat(np.arange(len(signals.ids), dtype=np.int32),
                           [len(row) - signals.first for row in signals.ids])[rows_kept]
    positions = np.concatenate([np.arange(signals.first, len(row), dtype=np.int32) for row in signals.ids])[rows_kept]
    pieces = _pieces(subject, signals.ids)
    result = NetworksResult(
        maps.reshape(int(components), len(chosen_layers), subject.d_model), sources, text_index, positions,
        chosen_layers, float(threshold), [corpus.texts[t] for t in chosen], [corpus.labels[t] for t in chosen],
        pieces, metadata, energy.reshape(len(chosen_layers), subject.d_model).astype(np.float32), weakref.ref(subject))
    if not result.key_mask.any():
        warnings.warn(NeuroMagicsWarning(
            f"No neuron has z > {threshold:g} (the largest is {float(maps.max()):.2f}): there are no key neurons; "
            "re-cut with result.with_threshold(T) for a lower T."))
    return result


def _column_square_mean(matrix: np.ndarray) -> np.ndarray:
    """Each column's mean square in float64. ``einsum`` with ``dtype`` casts in small buffers: no
    float64 copy of the whole tokens x neurons matrix (``np.std(dtype=float64)`` makes one, 2x
    the float32 matrix, and takes 4x as long)."""
    return np.einsum("td,td->d", matrix, matrix, dtype=np.float64) / len(matrix)


def _standardize(matrix: np.ndarray) -> None:
    """Each column to mean 0 and standard deviation 1 (a constant column to mean 0), in place; the
    moments are summed in float64 without a float64 copy of the matrix."""
    matrix -= matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    left = matrix.mean(axis=0, dtype=np.float64)  # float32 rounding of the centring
    spread = np.sqrt(np.maximum(_column_square_mean(matrix) - left**2, 0.0)).astype(np.float32)
    matrix /= np.where(spread > 0, spread, 1.0).astype(np.float32)


def _pieces(subject: Subject, ids: list[list[int]]) -> list[list[str]]:
    """Every token as text, each distinct id decoded once."""
    distinct = sorted({token for row in ids for token in row})
    text = dict(zip(distinct, subject.token_pieces(distinct)))
    return [[text[token] for token in row] for row in ids]
