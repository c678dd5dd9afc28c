"""%diff_models: how two versions of a model differ, in outputs, activations and weights.

A and B are states of the loaded model (``current``; ``original``: the identity program, no
interventions; ``-KIND``: the current state without the interventions of one kind, e.g.
``-adapter`` or ``-steer``; a layer program such as ``0-12,8-29`` with the current
interventions) or another checkpoint (a local folder or hub id, loaded beside it on the same
device and released after; it must share the tokenizer). Measured on a small corpus:

- per-token KL(A || B) of the next-token distributions, and the tokens where it is largest;
- per-layer drift of the residual stream: mean L2 of the difference (absolute and relative to
  A's norm), mean cosine of A's and B's states, and a PCA of the differences (how many
  directions the drift lives in). The first token of each text (an attention sink with norms
  20-30x the rest) is left out of the drift, and the PCA reads the first ``PCA_MAX_TOKENS`` tokens;
- per weight matrix: relative change ``||W_B - W_A||_F / ||W_A||_F`` of the weights each side
  effectively runs (a hooked LoRA counts as ``scaling * B A``) and the numerical rank of the
  change (singular values above the float rounding of the weights);
- forgetting: the built-in probes' mean answer log-prob on each side.

The subject's state is put back exactly afterwards, also after an error or interrupt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.adapters import weight_matrix
from ..core.errors import NeuroMagicsError
from ..core.offload import weight_float64, weight_value
from ..core.interventions import Intervention
from ..core.programs import LayerProgram
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, prepare, run
from ..core.subject import Subject, with_lock
from ..core.corpus import GENRES, builtin_corpus, load_corpus
from ..core.interventions import ADAPTER_KINDS
from ..core.matrices import matrix_grid
from ..core.probe_sets import SCORED_PROBES, answer_set_scores

#: Texts per genre of the built-in corpus in the default (small) diff.
DEFAULT_TEXTS_PER_GENRE = 2
#: Principal components of the drift kept per layer.
PCA_COMPONENTS = 5
#: Tokens (the first ones read) whose differences the PCA of each layer's drift is taken over:
#: a large corpus would otherwise keep tokens x d_model x layers floats in memory.
PCA_MAX_TOKENS = 4096
#: Bytes of one side's outputs (log-probs and residual states) kept for comparison with the other
#: side: the corpus runs side-major in chunks of this size, so the subject's state (which may rewrite
#: every weight, as a pruning does) switches once per chunk rather than twice per batch.
STORED_SIDE_BYTES = 1 << 30
#: Names for the kinds of interventions ``-KIND`` can leave out (``-adapter`` means every LoRA).
KIND_ALIASES = {"adapter": ADAPTER_KINDS, "adapters": ADAPTER_KINDS, "lora": ADAPTER_KINDS}
_PROGRAM = re.compile(r"^\s*[0-9]+\s*([-:]\s*[0-9]+\s*)?(,\s*[0-9]+\s*([-:]\s*[0-9]+\s*)?)*$")
SIDE_HELP = ("current, original, -KIND (current without KIND interventions: -adapter, -steer, ...), "
             "a layer program like 0-12,8-29, or a checkpoint folder / hub id")


@dataclass
class _Side:
    """One side of the diff: a state of the main subject, or another subject as loaded."""

    label: str
    subject: Subject
    program: LayerProgram | None = None  # None: another subject, run as it is
    interventions: tuple[Intervention, ...] = ()
    loaded: bool = False  # we loaded it: release it afterwards

    def hooked_delta(self, name: str) -> torch.Tensor | None:
        """The sum of the hooked LoRA updates on matrix ``name`` in this state (float64)."""
        interventions = self.subject.interventions if self.program is None else self.interventions
        total = None
        for intervention in interventions:
            adapter = getattr(intervention, "adapter", None)
            if intervention.kind == "lora" and adapter is not None and name in adapter.A:
                delta = adapter.delta(name).double()
                total = delta if total is None else total + delta
        return total


def _resolve(subject: Subject, spec: str, device: str) -> _Side:
    """A side from its spec (see ``SIDE_HELP``), without changing anything yet."""
    if not isinstance(spec, str) or not spec.strip():
        raise NeuroMagicsError(f"Empty model spec: use {SIDE_HELP}.")
    spec = spec.strip()
    if spec == "current":
        return _Side(spec, subject, subject.program, subject.interventions)
    if spec == "original":
        return _Side(spec, subject, LayerProgram.identity(subject.n_layers), ())
    if spec.startswith(("-", "no-")):
        kind = spec.removeprefix("no-").lstrip("-")
        kinds = KIND_ALIASES.get(kind, (kind,))
        kept = tuple(i for i in subject.interventions if i.kind not in kinds)
        if len(kept) == len(subject.interventions):
            active = sorted({i.kind for i in subject.interventions})
            raise NeuroMagicsError(f"{spec}: no {kind} intervention is active (active: "
                                   f"{', '.join(active) or 'none'}); A and B would be the same model.")
        return _Side(spec, subject, subject.program, kept)
    if _PROGRAM.match(spec):
        return _Side(spec, subject, LayerProgram.parse(spec, subject.n_layers), subject.interventions)
    from ..core.loading import load_model

    other = load_model(spec, device=device, dtype=str(subject.dtype).removeprefix("torch."))
    try:
        if other.tokenizer is None or subject.tokenizer is None or \
                other.tokenizer.get_vocab() != subject.tokenizer.get_vocab():
            raise NeuroMagicsError(f"{spec} has another tokenizer than {subject.name}: next-token distributions "
                                   "cannot be compared token for token.")
        if other.d_model != subject.d_model:
            raise NeuroMagicsError(f"{spec} has d_model {other.d_model} and {subject.name} {subject.d_model}: the diff "
                                   "compares residual streams dimension by dimension; pick a checkpoint of the same width.")
    except BaseException:
        other.release()
        raise
    return _Side(spec, other, None, (), loaded=True)


class _States:
    """Puts the main subject in a side's state; ``restore`` brings the original back."""

    def __init__(self, subject: Subject):
        self.subject = subject
        self.program, self.interventions = subject.program, subject.interventions

    def is_current(self, side: _Side) -> bool:
        """Whether entering ``side`` now changes nothing on the main subject."""
        return side.program is None or (side.program == self.subject.program and
                                        tuple(side.interventions) == self.subject.interventions)

    def enter(self, side: _Side) -> Subject:
        if not self.is_current(side):
            self.subject.set_state(side.program, side.interventions)
        return side.subject

    def restore(self) -> None:
        if self.subject.program != self.program or self.subject.interventions != self.interventions:
            self.subject.set_state(self.program, self.interventions)


def _default_corpus() -> list[str]:
    texts = []
    for genre in GENRES:
        texts += builtin_corpus([genre]).texts[:DEFAULT_TEXTS_PER_GENRE]
    return list(texts)


def _token_rows(subject: Subject, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    rows = [list(subject.tokenizer(text)["input_ids"])[:max_tokens] for text in texts]
    short = [k for k, row in enumerate(rows) if len(row) < 2]
    if short:
        raise NeuroMagicsError(f"Text {short[0]} of the corpus is shorter than two tokens: give longer texts.")
    return rows


@torch.no_grad()
def _forward(subject: Subject, ids: torch.Tensor, mask: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs over the first ``vocab`` tokens ``[batch, tokens, vocab]`` (two checkpoints with one
    tokenizer may pad their vocabularies differently) and every step's output ``[steps, batch,
    tokens, d]`` (float32), from the runner on the subject as it is now."""
    inputs = prepare(subject, ids, mask)
    output = run(subject, inputs, capture=Capture(sites=("resid_post",), device=subject.device, dtype=torch.float32),
                 logits_at="all")
    return torch.log_softmax(output.logits[..., :vocab].float(), dim=-1), output.captures["resid_post"]


def kl_divergence(logprobs_a: torch.Tensor, logprobs_b: torch.Tensor) -> torch.Tensor:
    """KL(A || B) over the last axis, from log-probabilities."""
    return (logprobs_a.exp() * (logprobs_a - logprobs_b)).sum(-1)


def numerical_rank(change: torch.Tensor, tolerance: float) -> int:
    """Singular values of ``change`` above ``tolerance``. Read from the eigenvalues of the smaller
    Gram matrix (2-5x cheaper than an SVD of a 576 x 1536 matrix); where one of them lies within
    the Gram route's rounding bound of ``tolerance ** 2`` the count could differ from the SVD's,
    and the SVD decides."""
    if not bool(change.any()):
        return 0
    tall = change if change.shape[0] >= change.shape[1] else change.T
    squares = torch.linalg.eigvalsh(tall.T @ tall)
    # Forming the Gram matrix and its symmetric eigensolve each move an eigenvalue by at most about
    # (size * eps * ||change||_F^2); four times that is a safe band.
    slack = 4 * sum(change.shape) * torch.finfo(change.dtype).eps * float(change.norm()) ** 2
    if bool(((squares - tolerance ** 2).abs() <= slack).any()):
        return int((torch.linalg.svdvals(tall) > tolerance).sum())
    return int((squares > tolerance ** 2).sum())


def explained_variance(differences: torch.Tensor, k: int) -> np.ndarray:
    """Share of the variance of the (centred) rows on each of the top ``k`` principal axes;
    zeros where the rows do not vary."""
    centred = differences.double() - differences.double().mean(0)
    values = torch.linalg.svdvals(centred) ** 2
    total = float(values.sum())
    ratios = np.zeros(k, dtype=np.float32)
    if total > 0:
        top = (values[:k] / total).cpu().numpy()
        ratios[:len(top)] = top
    return ratios


@dataclass(repr=False, eq=False)
class ModelDiffResult(Result):
    """A against B on a corpus: per-token KL, per-layer drift, per-matrix weight change, probe scores."""

    kind = "model_diff"

    a: str
    b: str
    texts: list[str]
    pieces: list[list[str]]  # each text's tokens (as scored, at most max_tokens)
    token_ids: np.ndarray  # [texts, tokens] int32, -1 past a text's end
    kl: np.ndarray  # [texts, tokens] KL(A || B) of the distribution after each token; NaN past the end
    top_a: np.ndarray  # [texts, tokens] int32 A's most likely next token
    top_b: np.ndarray  # [texts, tokens] int32 B's
    top_pieces: dict[str, str]  # token id -> text, for top_a / top_b
    drift_l2: np.ndarray  # [steps] mean ||h_B - h_A|| per step compared
    drift_relative: np.ndarray  # [steps] mean ||h_B - h_A|| / ||h_A||
    drift_cosine: np.ndarray  # [steps] mean cos(h_A, h_B)
    drift_pca: np.ndarray  # [steps, PCA_COMPONENTS] explained-variance ratios of the differences
    matrices: list[str]  # "<block>.<path>"
    weight_change: np.ndarray  # [matrices] ||W_B - W_A||_F / ||W_A||_F (NaN: not comparable)
    weight_rank: np.ndarray  # [matrices] int32 numerical rank of W_B - W_A (-1: not comparable)
    probes: list[str]
    probe_a: np.ndarray  # [probes] mean answer log-prob under A
    probe_b: np.ndarray
    steps: tuple[int, int]  # program lengths of A and B (drift compares the first min of them)
    metadata: dict[str, Any]

    @property
    def mean_kl(self) -> float:
        return float(np.nanmean(self.kl))

    @property
    def n_tokens(self) -> int:
        return int(np.isfinite(self.kl).sum())

    def weight_grid(self) -> tuple[np.ndarray, list[str], list[str]]:
        """The relative weight change as ``[blocks, matrix paths]``, with the labels."""
        return matrix_grid(self.matrices, self.weight_change)

    def rank_grid(self) -> tuple[np.ndarray, list[str], list[str]]:
        return matrix_grid(self.matrices, self.weight_rank.astype(np.float32))

    def top_tokens(self, n: int = 10, window: int = 8) -> list[dict[str, Any]]:
        """The ``n`` tokens with the largest KL, each with its context, A's and B's top prediction."""
        flat = np.where(np.isfinite(self.kl), self.kl, -np.inf).ravel()
        order = np.argsort(-flat, kind="stable")[:n]
        found = []
        for index in order:
            if not np.isfinite(flat[index]):
                break
            text, position = divmod(int(index), self.kl.shape[1])
            pieces = self.pieces[text]
            found.append({
                "text": text, "position": position, "kl": float(flat[index]), "token": pieces[position],
                "left": "".join(pieces[max(0, position - window):position]),
                "next": pieces[position + 1] if position + 1 < len(pieces) else "",
                "top_a": self.top_pieces[str(int(self.top_a[text, position]))],
                "top_b": self.top_pieces[str(int(self.top_b[text, position]))],
            })
        return found

    def to_numpy(self) -> np.ndarray:
        return self.kl

    def to_pandas(self):
        """One row per scored token: its text, position, piece, KL and both sides' top prediction."""
        import pandas as pd

        rows = []
        for t, pieces in enumerate(self.pieces):
            for p, piece in enumerate(pieces):
                rows.append({"text": t, "position": p, "token": piece, "kl": float(self.kl[t, p]),
                             "top_a": self.top_pieces[str(int(self.top_a[t, p]))],
                             "top_b": self.top_pieces[str(int(self.top_b[t, p]))]})
        return pd.DataFrame(rows)

    def layers_frame(self):
        """Drift per step compared."""
        import pandas as pd

        frame = pd.DataFrame({"l2": self.drift_l2, "relative_l2": self.drift_relative, "cosine": self.drift_cosine})
        for k in range(self.drift_pca.shape[1]):
            frame[f"pc{k + 1}_explained"] = self.drift_pca[:, k]
        return frame.rename_axis("step")

    def matrices_frame(self):
        import pandas as pd

        return pd.DataFrame({"matrix": self.matrices, "relative_change": self.weight_change,
                             "rank": self.weight_rank})

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in (
            "token_ids", "kl", "top_a", "top_b", "drift_l2", "drift_relative", "drift_cosine", "drift_pca",
            "weight_change", "weight_rank", "probe_a", "probe_b")}

    def _fields(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "texts": self.texts, "pieces": self.pieces, "top_pieces": self.top_pieces,
                "matrices": self.matrices, "probes": self.probes, "steps": list(self.steps)}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> ModelDiffResult:
        return cls(**{**fields, "steps": tuple(fields["steps"])}, **arrays, metadata=metadata)

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(measure, A, B) rows: the probes."""
        return [(f"probe {name} (mean answer log-prob)", f"{a:.3f}", f"{b:.3f}")
                for name, a, b in zip(self.probes, self.probe_a, self.probe_b)]

    def __repr__(self) -> str:
        changed = int(np.nansum(self.weight_change > 0))
        top = self.top_tokens(1)
        worst = f", max {top[0]['kl']:.3g} at {top[0]['token']!r}" if top else ""
        last = (f"last step drift {self.drift_relative[-1]:.3g} (relative L2), cos {self.drift_cosine[-1]:.4f}"
                if len(self.drift_l2) else "no steps compared")
        probes = ", ".join(f"{n} {a:.2f} -> {b:.2f}" for n, a, b in zip(self.probes, self.probe_a, self.probe_b))
        return (f"ModelDiffResult({self.a} vs {self.b} on {self.n_tokens} tokens: mean KL {self.mean_kl:.3g}{worst}; "
                f"{last}; weights changed in {changed}/{len(self.matrices)} matrices "
                f"(max {np.nanmax(self.weight_change, initial=0.0):.3g}); probes {probes})")


@with_lock
def diff_models(
    subject: Subject,
    a: str = "current",
    b: str = "original",
    *,
    corpus: str | Sequence[str] | None = None,
    max_tokens: int = 64,
    batch_size: int = 8,
    probes: bool = True,
    progress: bool = True,
) -> ModelDiffResult:
    """Diff model A against model B (specs: ``SIDE_HELP``) on ``corpus`` (default: two texts of
    each genre of the built-in corpus; else what ``load_corpus`` reads), each text cut to
    ``max_tokens``. ``probes=False`` skips the forgetting scores. The subject's program and
    interventions are exactly as before afterwards.

    Measured (default model, fp32, CPU, one thread on a shared 2-core machine): the default run
    (10 texts x 64 tokens, both probes) takes 13 s, 7 s without the probes."""
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 2:
        raise NeuroMagicsError(f"--max-tokens must be a whole number of at least 2 (got {max_tokens!r}).")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise NeuroMagicsError(f"batch_size must be a whole number of at least 1 (got {batch_size!r}).")
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer: load the model with its tokenizer to diff it.")
    texts = _default_corpus() if corpus is None else list(load_corpus(corpus).texts)
    rows = _token_rows(subject, texts, max_tokens)
    subject.check_context(max(len(row) for row in rows), what="A corpus text", advice="Give a smaller --max-tokens.")
    device = str(subject.device)
    states = _States(subject)
    sides: list[_Side] = []
    try:
        for spec in (a, b):
            sides.append(_resolve(subject, spec, device))
        metadata = run_metadata(subject, texts, analysis="model_diff", a=a, b=b, max_tokens=max_tokens,
                                side_interventions={side.label: [i.spec for i in side.interventions]
                                                    for side in sides if side.program is not None},
                                side_programs={side.label: list(side.program.steps)
                                               for side in sides if side.program is not None})
        return _measure(subject, sides, states, texts, rows, batch_size, probes, progress, metadata)
    finally:
        states.restore()
        for side in sides:
            if side.loaded:
                side.subject.release()


def _chunks(batches: list[list[int]], width: int, per_token_bytes: int) -> list[list[list[int]]]:
    """Consecutive batches grouped so that one side's stored outputs for a group stay within
    ``STORED_SIDE_BYTES`` (at least one batch per group)."""
    per_batch = [len(batch) * width * per_token_bytes for batch in batches]
    groups: list[list[list[int]]] = []
    used = 0
    for batch, size in zip(batches, per_batch):
        if not groups or used + size > STORED_SIDE_BYTES:
            groups.append([])
            used = 0
        groups[-1].append(batch)
        used += size
    return groups


def _visits(n_chunks: int, first: int) -> list[tuple[int, int]]:
    """(side, chunk) in run order: side ``first`` then the other on the first chunk, the other way
    round on the next, ... so that consecutive chunks share a side and the subject switches once
    per chunk, not twice per batch."""
    order = []
    for chunk in range(n_chunks):
        pair = (first, 1 - first) if chunk % 2 == 0 else (1 - first, first)
        order += [(side, chunk) for side in pair]
    return order


def _measure(subject: Subject, sides: list[_Side], states: _States, texts: list[str], rows: list[list[int]],
             batch_size: int, probes: bool, progress: bool, metadata: dict[str, Any]) -> ModelDiffResult:
    """Side-major: each side's state is entered once per chunk of batches (once in all for a corpus
    whose outputs fit ``STORED_SIDE_BYTES``); the side run first in a chunk keeps its log-probs and
    residual states until the other side's run of the same batches is compared with them. Weight
    snapshots and probe scores are taken on a side's first visit."""
    side_a, side_b = sides
    n_steps = min(len(s.subject.program) if s.program is None else len(s.program) for s in sides)
    vocab = min(s.subject.vocab_size for s in sides)  # the larger one's extra rows are padding
    width = max(len(row) for row in rows)
    kl = np.full((len(rows), width), np.nan, dtype=np.float32)
    top = [np.full((len(rows), width), -1, dtype=np.int32) for _ in sides]
    drift = _Drift(n_steps)
    batches = [list(range(k, min(k + batch_size, len(rows)))) for k in range(0, len(rows), batch_size)]
    chunks = _chunks(batches, width, 4 * (vocab + n_steps * subject.d_model))
    weights = _WeightChanges(subject, sides, states)
    scores: list[dict[str, float]] = [{}, {}]
    work = 2 * len(batches) + (2 if probes else 0) + 1
    with ProgressBar(work, f"diff {side_a.label} vs {side_b.label}", "part", enabled=progress) as bar:
        stored: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for side_index, chunk in _visits(len(chunks), first=1 if states.is_current(side_b) else 0):
            side = sides[side_index]
            side_subject = states.enter(side)
            weights.visit(side_index)
            if probes and not scores[side_index]:
                scores[side_index] = answer_set_scores(side_subject)
                bar.update()
            for batch in chunks[chunk]:
                ids, mask = subject.left_padded([rows[k] for k in batch])
                logprobs, resid = _forward(side_subject, ids, mask, vocab)
                resid = resid[:n_steps]
                top_tokens = logprobs.argmax(-1).cpu().numpy()
                for r, k in enumerate(batch):
                    top[side_index][k, :len(rows[k])] = top_tokens[r, ids.shape[1] - len(rows[k]):]
                key = batch[0]
                if key not in stored:
                    stored[key] = (logprobs, resid)
                    bar.update()
                    continue
                other_logprobs, other_resid = stored.pop(key)
                (logprobs_a, resid_a), (logprobs_b, resid_b) = (
                    ((other_logprobs, other_resid), (logprobs, resid)) if side_index == 1
                    else ((logprobs, resid), (other_logprobs, other_resid)))
                token_kl = kl_divergence(logprobs_a, logprobs_b).cpu().numpy()
                del logprobs_a, logprobs_b, logprobs, other_logprobs
                keep = mask.bool().clone()
                for r, k in enumerate(batch):
                    offset = ids.shape[1] - len(rows[k])
                    kl[k, :len(rows[k])] = token_kl[r, offset:]
                    keep[r, offset] = False  # the first token: an attention sink, 20-30x the other norms
                drift.add(resid_a[:, keep], resid_b[:, keep])
                bar.update()
        matrices, change, rank = weights.changes()
        bar.update()
    probe_a = probe_b = np.zeros(0, dtype=np.float32)
    if probes:
        probe_a = np.array([scores[0][p] for p in SCORED_PROBES], dtype=np.float32)
        probe_b = np.array([scores[1][p] for p in SCORED_PROBES], dtype=np.float32)
    used = sorted({int(t) for t in (*top[0].ravel(), *top[1].ravel()) if t >= 0})
    return ModelDiffResult(
        a=side_a.label, b=side_b.label, texts=texts, pieces=[subject.token_pieces(row) for row in rows],
        token_ids=np.array([row + [-1] * (width - len(row)) for row in rows], dtype=np.int32), kl=kl,
        top_a=top[0], top_b=top[1], top_pieces={str(t): subject.tokenizer.decode([t]) for t in used},
        **drift.result(), matrices=matrices, weight_change=change, weight_rank=rank,
        probes=list(SCORED_PROBES) if probes else [], probe_a=probe_a, probe_b=probe_b,
        steps=tuple(len(s.subject.program) if s.program is None else len(s.program) for s in sides),
        metadata=metadata,
    )


class _Drift:
    """Per-step sums of the residual drift over the tokens seen, and the differences the PCA reads.
    Differences, norms and cosines are taken in the captures' float32 (no float64 copy of whole
    activations); only the sums over tokens are float64."""

    def __init__(self, n_steps: int):
        self.n_steps = n_steps
        self.l2 = torch.zeros(n_steps, dtype=torch.float64)
        self.relative = torch.zeros(n_steps, dtype=torch.float64)
        self.cosine = torch.zeros(n_steps, dtype=torch.float64)
        self.differences: list[list[torch.Tensor]] = [[] for _ in range(n_steps)]
        self.counted = 0

    def add(self, states_a: torch.Tensor, states_b: torch.Tensor) -> None:
        """``states_*``: ``[steps, tokens, d]`` float32 of the tokens counted."""
        difference = states_b - states_a
        norm_a = states_a.norm(dim=-1)
        l2 = difference.norm(dim=-1)
        self.l2 += l2.double().sum(-1).cpu()
        self.relative += (l2 / norm_a.clamp_min(torch.finfo(norm_a.dtype).tiny)).double().sum(-1).cpu()
        self.cosine += torch.nn.functional.cosine_similarity(states_a, states_b, dim=-1).double().sum(-1).cpu()
        room = PCA_MAX_TOKENS - sum(len(d) for d in self.differences[0]) if self.n_steps else 0
        for step in range(self.n_steps if room > 0 else 0):
            self.differences[step].append(difference[step, :room].cpu())
        self.counted += states_a.shape[1]

    def result(self) -> dict[str, np.ndarray]:
        count = max(self.counted, 1)
        pca = (np.stack([explained_variance(torch.cat(d), PCA_COMPONENTS) if self.counted else np.zeros(PCA_COMPONENTS)
                         for d in self.differences]) if self.n_steps else np.zeros((0, PCA_COMPONENTS)))
        return {"drift_l2": (self.l2 / count).numpy().astype(np.float32),
                "drift_relative": (self.relative / count).numpy().astype(np.float32),
                "drift_cosine": ((self.cosine / count).numpy().astype(np.float32) if self.counted
                                 else np.ones(self.n_steps, np.float32)),
                "drift_pca": np.asarray(pca, dtype=np.float32)}


class _WeightChanges:
    """Relative change and numerical rank of every block matrix between what A and B run. The side
    visited first keeps a copy (in the weights' own dtype) of the matrices an intervention rewrites;
    the changes are taken while the other side's state is entered, against its live weights."""

    def __init__(self, subject: Subject, sides: list[_Side], states: _States):
        self.subject, self.sides = subject, sides
        self.touched = {id(p) for interventions in (states.interventions, *(s.interventions for s in sides))
                        for i in interventions if i.weights is not None for p in i.weights.parameters}
        self.kept: dict[int, dict[str, torch.Tensor]] = {}
        self.found: tuple[list[str], np.ndarray, np.ndarray] | None = None

    @torch.no_grad()
    def visit(self, side_index: int) -> None:
        """Called with ``side_index``'s state entered."""
        if side_index in self.kept or self.found is not None:
            return
        if self.kept:  # the second side: compare now, while its weights are live
            self.found = self._compare(side_index)
            return
        side = self.sides[side_index]
        modules = side.subject.block_matrices()
        self.kept[side_index] = {} if side.program is None else {
            name: weight_value(m).clone() for name, m in modules.items() if id(m.weight) in self.touched}

    def changes(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        assert self.found is not None, "both sides are visited before the changes are read"
        return self.found

    def _compare(self, live_index: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        own = self.subject.block_matrices()
        modules = [side.subject.block_matrices() for side in self.sides]
        kept = self.kept[1 - live_index]
        names = list(own)
        change = np.full(len(names), np.nan, dtype=np.float32)
        rank = np.full(len(names), -1, dtype=np.int32)
        for k, name in enumerate(names):
            weights = []
            for index, side in enumerate(self.sides):
                if name not in modules[index]:
                    break
                if index != live_index and name in kept:
                    weight = kept[name].to(torch.float64)
                else:
                    weight = weight_float64(modules[index][name])
                delta = side.hooked_delta(name)
                weights.append(weight if delta is None else weight + delta.to(weight.device))
            if len(weights) < 2 or weights[0].shape != weights[1].shape:
                continue
            difference = weights[1] - weights[0]
            norm_a, norm_b, norm_difference = (float(w.norm()) for w in (weights[0], weights[1], difference))
            change[k] = norm_difference / norm_a if norm_a > 0 else norm_difference
            # Changes below the float rounding of the stored weights are rounding, not rank.
            eps = torch.finfo(weight_matrix(own[name]).dtype).eps
            rank[k] = numerical_rank(difference, eps * (norm_a + norm_b))
        return names, change, rank
