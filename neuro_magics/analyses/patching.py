"""Activation patching: which states carry the difference between a clean and a corrupt prompt.

Exact patching reuses prefixes: a patch at program step ``l`` changes nothing before
``l``, so every cell of step ``l`` starts from the cached base state entering ``l``, all
cells of a step run as rows of one batched runner call, and only the last position is
unembedded. Attribution patching estimates every cell at once from one gradient
(2 forwards + 1 backward): ``(source - base) . dM/d(base)``.

The effect is normalised so that 1.0 means "the patch restores the clean behaviour" and
0.0 means "it looks corrupt": ``(M_patched - M_corrupt) / (M_clean - M_corrupt)``.
``denoise`` patches clean states into the corrupt run; ``noise`` patches corrupt states
into the clean run (there 1.0 means the patch did nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.activations import check_choice
from ..core.answers import answer_token_ids, at_least_float32, encode_one, metric_values, top_tokens
from ..core.errors import NeuroMagicsError
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, Edit, RunInputs, prepare, run
from ..core.subject import Subject, with_lock
from ..core.sweep import sweep

SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out", "heads")
METRICS = ("logit_diff", "logprob", "prob")
DIRECTIONS = ("denoise", "noise")
METHODS = ("exact", "attribution", "both")

# -- patching --------------------------------------------------------------------------------


@dataclass
class _Side:
    """A prompt's run: its inputs and the states a sweep needs, per program step ``[steps, 1, T, F]``."""

    inputs: RunInputs
    states: dict[str, torch.Tensor]
    logits: torch.Tensor  # [1, vocab] at the last position
    keys_values: dict[int, tuple[torch.Tensor, torch.Tensor]]  # per step, what its attention saw


@torch.no_grad()
def _record(subject: Subject, input_ids: torch.Tensor, site: str) -> _Side:
    inputs = prepare(subject, input_ids)
    sites = ("resid_pre",) if site == "resid_pre" else ("resid_pre", site)
    out = run(subject, inputs, capture=Capture(sites=sites, device=subject.device), logits_at="last",
              record_keys_values=not any(args for args, _ in inputs.block_calls))  # GPT-2 passes them by position
    return _Side(inputs, dict(out.captures), out.logits[:, -1], out.keys_values)


@with_lock
def patch(
    subject: Subject,
    clean: str,
    corrupt: str,
    answers: Sequence[str],
    *,
    site: str = "resid_pre",
    metric: str = "logit_diff",
    direction: str = "denoise",
    method: str = "exact",
    top_k: int = 5,
    batch_size: int = 64,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> PatchResult:
    """Patch ``site`` (per program step x position, or x head for ``heads``) from one prompt's
    run into the other's and measure ``metric`` on ``answers`` at the last position.

    ``resid_post`` (a block's output) exists so that the last block can be patched too.
    ``answers``: single tokens; ``logit_diff`` needs two (the clean answer, then the corrupt
    one), ``logprob`` / ``prob`` use the first. ``heads`` patches a head's output at every
    position. Interrupting keeps the finished steps (the rest are NaN); the model is untouched.
    ``workers``: run the exact sweep's steps on that many Ray workers (at ``ray_address``, else a
    local cluster), each with a copy of the model; same numbers, a dead worker's step re-done.
    """
    check_choice("site", site, SITES)
    check_choice("metric", metric, METRICS)
    check_choice("direction", direction, DIRECTIONS)
    check_choice("method", method, METHODS)
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer; patching needs text prompts.")
    answers = [answers] if isinstance(answers, str) else list(answers or [])
    needed = 2 if metric == "logit_diff" else 1
    if len(answers) < needed or len(answers) > 2:
        raise NeuroMagicsError(
            f"--metric {metric} needs {'two answers (clean, then corrupt)' if needed == 2 else 'one answer'}, "
            f"got {len(answers)}: e.g. --answers \" Mary\" \" John\"."
        )
    if not 1 <= top_k <= subject.vocab_size:
        raise NeuroMagicsError(f"top_k must be between 1 and {subject.vocab_size} (got {top_k}).")
    if batch_size < 1:
        raise NeuroMagicsError(f"batch_size must be at least 1 (got {batch_size}).")
    if workers is not None and method == "attribution":
        raise NeuroMagicsError("--workers shards the exact sweep; --method attribution is one gradient run here: "
                               "drop --workers.")
    if workers is not None or ray_address is not None:
        from ..core.distributed import check_workers

        check_workers(subject, workers, ray_address)
    answer_ids = answer_token_ids(subject, answers)
    clean_ids, corrupt_ids = encode_one(subject, clean, "clean"), encode_one(subject, corrupt, "corrupt")
    if clean_ids.shape[1] != corrupt_ids.shape[1]:
        raise NeuroMagicsError(
            f"The clean prompt is {clean_ids.shape[1]} tokens and the corrupt one {corrupt_ids.shape[1]}: patching "
            "pairs positions, so make them the same length (swap in words of equal token length)."
        )
    if torch.equal(clean_ids, corrupt_ids):
        raise NeuroMagicsError(
            "The clean and corrupt prompts are the same tokens, so every patch changes nothing and the normalised "
            "effect is undefined (0/0): change the corrupt prompt where you want to test."
        )

    sides = {"clean": _record(subject, clean_ids, site), "corrupt": _record(subject, corrupt_ids, site)}
    base, source = _base_and_source(sides["clean"], sides["corrupt"], direction)
    clean_metric = metric_values(sides["clean"].logits, answer_ids, metric).item()
    corrupt_metric = metric_values(sides["corrupt"].logits, answer_ids, metric).item()
    scale = clean_metric - corrupt_metric
    if scale == 0:
        raise NeuroMagicsError(
            f"The {metric} is the same on the clean and corrupt prompts ({clean_metric:.4g}), so a normalised "
            "effect is undefined: pick prompts or answers the model tells apart."
        )
    base_metric = clean_metric if direction == "noise" else corrupt_metric

    def normalise(values: np.ndarray) -> np.ndarray:
        return ((values - corrupt_metric) / scale).astype(np.float32)

    n_cols = subject.n_heads if site == "heads" else clean_ids.shape[1]
    patched = topk_ids = topk_probs = attribution = None
    interrupted = False
    if method in ("exact", "both"):
        patched, topk_ids, topk_probs, interrupted = _exact_sweep(
            subject, base, source, site, answer_ids, metric, n_cols, top_k, batch_size, progress, workers, ray_address,
            # the ids travel on the CPU: a worker sees one GPU, and a pickled tensor remembers cuda:N
            (clean_ids.cpu(), corrupt_ids.cpu(), site, direction, answer_ids, metric, n_cols, top_k, batch_size),
        )
    if method in ("attribution", "both") and not interrupted:
        estimate = _attribution(subject, base, source, site, answer_ids, metric)
        attribution = normalise(base_metric + estimate)

    clean_topk = top_tokens(sides["clean"].logits, top_k)
    corrupt_topk = top_tokens(sides["corrupt"].logits, top_k)
    used = [clean_topk[0], corrupt_topk[0], torch.as_tensor(answer_ids)]
    if topk_ids is not None:
        used.append(torch.as_tensor(topk_ids[topk_ids >= 0]))
    vocab_ids = torch.unique(torch.cat([u.reshape(-1).cpu() for u in used])).numpy()
    metadata = run_metadata(
        subject, [clean, corrupt], site=site, metric=metric, direction=direction, method=method,
        answers=answers, interrupted=interrupted,
    )
    return PatchResult(
        site=site, metric=metric, direction=direction, method=method, answers=answers, answer_ids=answer_ids,
        clean_tokens=subject.token_pieces(clean_ids[0].tolist()),
        corrupt_tokens=subject.token_pieces(corrupt_ids[0].tolist()),
        steps=list(subject.program.steps), n_cols=n_cols,
        clean_metric=clean_metric, corrupt_metric=corrupt_metric,
        effect=None if patched is None else normalise(patched),
        patched_metric=patched, attribution=attribution,
        topk_ids=topk_ids, topk_probs=topk_probs,
        clean_topk=(clean_topk[0][0].cpu().numpy().astype(np.int32), clean_topk[1][0].cpu().numpy().astype(np.float32)),
        corrupt_topk=(corrupt_topk[0][0].cpu().numpy().astype(np.int32), corrupt_topk[1][0].cpu().numpy().astype(np.float32)),
        vocab_ids=vocab_ids.astype(np.int64), vocab=subject.token_pieces(vocab_ids.tolist()),
        metadata=metadata,
    )


def _exact_sweep(subject, base: _Side, source: _Side, site, answer_ids, metric, n_cols, top_k, batch_size, progress,
                 workers: int | None = None, ray_address: str | None = None, worker_arguments: tuple = ()):
    """Every (step, column) cell; each step's cells are rows of batched runs from that step.
    With ``workers`` the steps go to Ray workers (``worker_arguments`` rebuild the sweep there)."""
    n_steps = len(subject.program)
    patched = np.full((n_steps, n_cols), np.nan, dtype=np.float32)
    topk_ids = np.full((n_steps, n_cols, top_k), -1, dtype=np.int32)
    topk_probs = np.zeros((n_steps, n_cols, top_k), dtype=np.float32)
    if workers is not None:
        interrupted = _sharded_rows(subject, site, n_steps, patched, topk_ids, topk_probs, progress, workers,
                                    ray_address, worker_arguments)
        return patched, topk_ids, topk_probs, interrupted
    rows = _StepCells(subject, base, source, site, answer_ids, metric, n_cols, top_k, batch_size)

    def work(batch: tuple[int, list[int]]) -> int:
        step, cols = batch
        patched[step, cols], topk_ids[step, cols], topk_probs[step, cols] = rows.cells(step, cols)
        return len(cols)

    batches = [(step, cols) for step in range(n_steps) for cols in rows.batches()]
    interrupted = sweep(batches, work, total=n_steps * n_cols, desc=f"patch {site}", progress=progress)
    return patched, topk_ids, topk_probs, interrupted


class _StepCells:
    """The exact sweep's cells of one program step, ``batch_size`` columns per batched run.
    The single process and every Ray worker compute a step with this, so they agree bit for bit."""

    def __init__(self, subject, base: _Side, source: _Side, site, answer_ids, metric, n_cols, top_k, batch_size):
        self.subject, self.base, self.source, self.site = subject, base, source, site
        self.answer_ids, self.metric, self.n_cols, self.top_k, self.batch_size = answer_ids, metric, n_cols, top_k, batch_size
        self.base_metric = metric_values(base.logits, answer_ids, metric).cpu().numpy()
        self.base_ids, self.base_probs = (t.cpu().numpy() for t in top_tokens(base.logits, top_k))

    def batches(self) -> list[list[int]]:
        return [list(range(first, min(first + self.batch_size, self.n_cols)))
                for first in range(0, self.n_cols, self.batch_size)]

    def cells(self, step: int, cols: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patched metric ``[cols]``, top-k ids and probabilities ``[cols, k]`` of one batch."""
        values = np.empty(len(cols), dtype=np.float32)
        ids = np.empty((len(cols), self.top_k), dtype=np.int32)
        probs = np.empty((len(cols), self.top_k), dtype=np.float32)
        # A patch whose value is bit-identical to the base run's changes nothing: that cell IS the
        # base run, so it gets the base run's numbers exactly (effect exactly 0, or 1 for noise).
        changed = [r for r, c in enumerate(cols) if not _same_cell(self.base, self.source, self.site, step, c)]
        unchanged = [r for r in range(len(cols)) if r not in changed]
        values[unchanged], ids[unchanged], probs[unchanged] = self.base_metric, self.base_ids, self.base_probs
        if changed:
            logits = _patched_logits(self.subject, self.base, self.source, self.site, step, [cols[r] for r in changed])
            values[changed] = metric_values(logits, self.answer_ids, self.metric).cpu().numpy()
            top_ids, top_probs = top_tokens(logits, self.top_k)
            ids[changed], probs[changed] = top_ids.cpu().numpy(), top_probs.cpu().numpy()
        return values, ids, probs

    def row(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every cell of ``step``, batch by batch as the single-process sweep runs them."""
        parts = [self.cells(step, cols) for cols in self.batches()]
        return tuple(np.concatenate(part) for part in zip(*parts))


def _worker_rows(subject: Subject, clean_ids: torch.Tensor, corrupt_ids: torch.Tensor, site: str, direction: str,
                 answer_ids: list[int], metric: str, n_cols: int, top_k: int,
                 batch_size: int) -> Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """What a Ray worker runs on its copy of the model: a program step -> its row of cells. The
    worker records both prompts' runs itself (same code, same threads: the driver's states)."""
    base, source = _base_and_source(_record(subject, clean_ids, site), _record(subject, corrupt_ids, site), direction)
    return _StepCells(subject, base, source, site, answer_ids, metric, n_cols, top_k, batch_size).row


def _sharded_rows(subject, site, n_steps, patched, topk_ids, topk_probs, progress, workers, ray_address,
                  worker_arguments) -> bool:
    """Fill the maps a step at a time as Ray workers finish them; returns whether Ctrl-C stopped it."""
    from ..core.distributed import ShardedWork, run_sharded

    bar = ProgressBar(n_steps, f"patch {site}", "step", enabled=progress)
    finished = 0

    def record_row(step: int, row: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        nonlocal finished
        patched[step], topk_ids[step], topk_probs[step] = row
        finished += 1
        bar.update(1)

    try:
        steps = list(range(n_steps))
        run_sharded(subject, ShardedWork(_worker_rows, worker_arguments), steps, [n_steps - s for s in steps],
                    workers=workers, ray_address=ray_address, on_result=record_row)
    except KeyboardInterrupt:
        print(f"Interrupted: kept the {finished} finished steps of {n_steps}; the rest are NaN.")
        return True
    finally:
        bar.close()
    return False


def _base_and_source(clean: _Side, corrupt: _Side, direction: str) -> tuple[_Side, _Side]:
    """The run that is patched and the run that gives the patched values."""
    return (corrupt, clean) if direction == "denoise" else (clean, corrupt)


def _same_cell(base: _Side, source: _Side, site: str, step: int, col: int) -> bool:
    """Whether column ``col`` (a position, or a head at every position) of ``site`` at ``step``
    is bit-identical in both runs."""
    if site == "heads":
        return torch.equal(base.states[site][step][0, :, col], source.states[site][step][0, :, col])
    return torch.equal(base.states[site][step][0, col], source.states[site][step][0, col])


@torch.no_grad()
def _patched_logits(
    subject: Subject, base: _Side, source: _Side, site: str, step: int, cols: Sequence[int],
    logits_at: str = "last",
) -> torch.Tensor:
    """Logits of one batched run from ``step``: row r is the base run with column ``cols[r]``
    (a position, or a head for ``heads``) of ``site`` at ``step`` taken from the source run."""
    rows = len(cols)
    stream = "resid_post" if site == "resid_post" else "resid_pre"
    resid = base.states[stream][step].expand(rows, -1, -1).clone()
    edits: list[Edit] = []
    start = step + 1 if site == "resid_post" else step  # a block's output is the next step's input
    index = torch.arange(rows, device=resid.device)
    columns = torch.as_tensor(cols, device=resid.device)
    if site in ("resid_pre", "resid_post") and logits_at == "last" and base.keys_values:
        # Positions before the first patched one are the base run's: reuse its keys and values there.
        first = min(cols)
        resid = resid[:, first:].clone()
        resid[index, columns - first] = source.states[site][step][0, columns]
        out = run(subject, base.inputs, start=start, resid=resid, logits_at="last", from_position=first,
                  keys_values=base.keys_values)
        return out.logits[:, -1]
    if site in ("resid_pre", "resid_post"):
        resid[index, columns] = source.states[site][step][0, columns]
    elif site in ("attn_out", "mlp_out"):
        donor = source.states[site][step][0]  # [T, F]
        edits = [Edit(step=step, site=site, op="replace", value=donor[columns], rows=index, positions=columns)]
    else:
        donor = source.states["heads"][step][0]  # [T, heads, head_dim]
        edits = [Edit(step=step, site="heads", op="replace", value=donor[:, columns].transpose(0, 1), rows=index,
                      heads=columns)]
    out = run(subject, base.inputs, start=start, resid=resid, edits=edits, logits_at=logits_at)
    return out.logits[:, -1] if logits_at == "last" else out.logits


def _attribution(subject, base: _Side, source: _Side, site, answer_ids, metric) -> np.ndarray:
    """First-order estimate of ``M_patched - M_base`` for every cell: one forward with a zero
    perturbation (requiring grad) at each step's site, one backward (no parameter grads)."""
    n_steps = len(subject.program)
    shape = base.states[site].shape[1:]
    deltas = [torch.zeros(shape, device=subject.device, dtype=subject.dtype, requires_grad=True) for _ in range(n_steps)]
    edits = [Edit(step=k, site=site, op="add", value=deltas[k]) for k in range(n_steps)]
    out = run(subject, base.inputs, edits=edits, logits_at="last", grad=True)
    value = metric_values(out.logits[:, -1], answer_ids, metric).sum()
    grads = torch.autograd.grad(value, deltas)
    difference = at_least_float32(source.states[site] - base.states[site])  # [steps, 1, T, F] ([steps, 1, T, heads, head_dim])
    products = at_least_float32(torch.stack(grads)) * difference
    if site == "heads":
        per_cell = products[:, 0].sum(dim=(1, 3))
    else:
        per_cell = products.sum(-1)[:, 0]
    return per_cell.detach().cpu().numpy()


# -- the result --------------------------------------------------------------------------------


@dataclass(kw_only=True, repr=False, eq=False)
class PatchResult(Result):
    """Normalised patching effects per program step x position (or x head for ``heads``).

    ``effect`` / ``patched_metric`` come from the exact sweep, ``attribution`` from the
    gradient estimate (either may be absent); each cell's patched top-k tokens are
    ``topk_ids`` (ids, -1 pads) with ``topk_probs``; ``vocab`` spells ``vocab_ids``.
    """

    kind = "patch"

    site: str
    metric: str
    direction: str
    method: str
    answers: list[str]
    answer_ids: list[int]
    clean_tokens: list[str]
    corrupt_tokens: list[str]
    steps: list[int]  # the block each program step ran
    n_cols: int
    clean_metric: float
    corrupt_metric: float
    effect: np.ndarray | None  # [steps, cols]
    patched_metric: np.ndarray | None  # [steps, cols]
    attribution: np.ndarray | None  # [steps, cols]
    topk_ids: np.ndarray | None  # [steps, cols, k]
    topk_probs: np.ndarray | None  # [steps, cols, k]
    clean_topk: tuple[np.ndarray, np.ndarray]  # (ids, probs) of the next token after the clean prompt
    corrupt_topk: tuple[np.ndarray, np.ndarray]
    vocab_ids: np.ndarray  # sorted ids of every token above
    vocab: list[str]
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        self.answers, self.answer_ids = list(self.answers), [int(i) for i in self.answer_ids]
        self.clean_tokens, self.corrupt_tokens = list(self.clean_tokens), list(self.corrupt_tokens)
        self.steps, self.n_cols = [int(s) for s in self.steps], int(self.n_cols)
        self.clean_metric, self.corrupt_metric = float(self.clean_metric), float(self.corrupt_metric)
        self.vocab_ids, self.vocab = np.asarray(self.vocab_ids, dtype=np.int64), list(self.vocab)

    # -- data ---------------------------------------------------------------------------------

    @property
    def columns(self) -> str:
        return "head" if self.site == "heads" else "position"

    @property
    def col_labels(self) -> list[str]:
        if self.site == "heads":
            return [f"h{h}" for h in range(self.n_cols)]
        return [c if c == k else f"{c}/{k}" for c, k in zip(self.clean_tokens, self.corrupt_tokens)]

    @property
    def row_labels(self) -> list[str]:
        identity = self.steps == list(range(len(self.steps)))
        return [str(k) if identity else f"{k} (block {b})" for k, b in enumerate(self.steps)]

    @property
    def correlation(self) -> float | None:
        """Pearson correlation of exact and attribution effects over finite cells (method "both")."""
        if self.effect is None or self.attribution is None:
            return None
        finite = np.isfinite(self.effect) & np.isfinite(self.attribution)
        if finite.sum() < 2 or self.effect[finite].std() == 0 or self.attribution[finite].std() == 0:
            return None
        return float(np.corrcoef(self.effect[finite], self.attribution[finite])[0, 1])

    def token(self, token_id: int) -> str:
        return self.vocab[int(np.searchsorted(self.vocab_ids, token_id))]

    def to_numpy(self) -> np.ndarray:
        """[steps, positions] (or [steps, heads]): exact effects, or attribution when only that ran."""
        return self.effect if self.effect is not None else self.attribution

    def to_pandas(self):
        import pandas as pd

        rows = []
        for k, block in enumerate(self.steps):
            for c in range(self.n_cols):
                row = {"step": k, "block": block, self.columns: c}
                if self.site != "heads":
                    row["clean_token"], row["corrupt_token"] = self.clean_tokens[c], self.corrupt_tokens[c]
                if self.effect is not None:
                    row["effect"] = float(self.effect[k, c])
                    row["patched_metric"] = float(self.patched_metric[k, c])
                if self.attribution is not None:
                    row["attribution"] = float(self.attribution[k, c])
                rows.append(row)
        return pd.DataFrame(rows)

    @property
    def title(self) -> str:
        method = "attribution" if self.effect is None else "exact"
        return f"{self.direction} patching of {self.site} ({method}), {self.metric} on {' vs '.join(map(repr, self.answers))}"

    def __repr__(self) -> str:
        values = self.to_numpy()
        text = (f"PatchResult({self.direction} {self.site}, {self.metric} on {' vs '.join(map(repr, self.answers))}: "
                f"{values.shape[0]} steps x {values.shape[1]} {self.columns}s; clean {self.clean_metric:.4g}, "
                f"corrupt {self.corrupt_metric:.4g}")
        if np.isfinite(values).any():
            k, c = np.unravel_index(np.nanargmax(values), values.shape)
            text += f"; max effect {values[k, c]:.3f} at step {k}, {self.columns} {c} ({self.col_labels[c]!r})"
        if self.correlation is not None:
            text += f"; exact vs attribution r={self.correlation:.3f}"
        return text + ")"

    # -- persistence ----------------------------------------------------------------------

    _ARRAY_NAMES = ("effect", "patched_metric", "attribution", "topk_ids", "topk_probs", "vocab_ids")

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: getattr(self, name) for name in self._ARRAY_NAMES if getattr(self, name) is not None}
        arrays.update(clean_topk_ids=self.clean_topk[0], clean_topk_probs=self.clean_topk[1],
                      corrupt_topk_ids=self.corrupt_topk[0], corrupt_topk_probs=self.corrupt_topk[1])
        return arrays

    def _fields(self) -> dict[str, Any]:
        return {
            "site": self.site, "metric": self.metric, "direction": self.direction, "method": self.method,
            "answers": self.answers, "answer_ids": self.answer_ids, "clean_tokens": self.clean_tokens,
            "corrupt_tokens": self.corrupt_tokens, "steps": self.steps, "n_cols": self.n_cols,
            "clean_metric": self.clean_metric, "corrupt_metric": self.corrupt_metric, "vocab": self.vocab,
        }

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> PatchResult:
        return cls(
            **fields, **{name: arrays.get(name) for name in cls._ARRAY_NAMES},
            clean_topk=(arrays["clean_topk_ids"], arrays["clean_topk_probs"]),
            corrupt_topk=(arrays["corrupt_topk_ids"], arrays["corrupt_topk_probs"]),
            metadata=metadata,
        )
