"""The brain scan: every RYS layer duplication (i, j) of a model, scored on a probe set.

Config (i, j), 0 <= i < j <= L, runs blocks 0..j-1 and then i..L-1, so block i..j-1 runs
twice (``times`` extra passes in general). Cell (i, j) of the (L+1) x (L+1) map is the
config's probe score minus the untouched model's. ``i == j`` duplicates nothing (the
baseline, delta 0); ``i > j`` is undefined (NaN).

Why it is fast (``score="logprob"``): one identity run of the residual-stream runner
keeps the state h_j entering every block, which is the output of the prefix 0..j-1 that
all configs ending at j share. All configs starting at i then run the same suffix
i..L-1 on different inputs, so the suffix runs once per i on the stacked states
{h_j : j > i} (chunked to bound memory), and logits are computed only at the answer
positions. The same identity run gives the cheap proxies of the sweep: Block Influence
per layer and the angular distance between layer inputs.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..core.errors import NeuroMagicsError, NeuroMagicsWarning
from ..core.paths import check_file_target, user_path
from ..core.probe_sets import (
    Probe,
    StopAtAnswerEnd,
    TeacherForcedBatch,
    credit,
    load_probe,
    prompt_batch,
    teacher_forced_batch,
)
from ..core.programs import LayerProgram, explicit_layer_word, parse_ranges
from ..core.progress import ProgressBar
from ..core.proxies import proxy_metrics
from ..core.results import Result, load_result, run_metadata
from ..core.runner import Capture, RunInputs, prepare, run, unembed
from ..core.subject import Subject, with_lock

SCORE_MODES = ("logprob", "generate")

#: Rows x tokens per suffix run: bounds activation memory (about 0.5 GB for the default
#: model in fp32) while keeping the matrices large enough to run efficiently.
DEFAULT_BATCH_TOKENS = 16384
#: Logit elements materialised at once when scoring (128 MiB in fp32).
_LOGITS_BUDGET = 1 << 25
#: Metadata that must match for ``resume`` to continue a saved scan.
_RESUME_KEYS = ("model", "n_layers", "probe", "score", "times", "items", "max_new_tokens")


class BrainScanCell(NamedTuple):
    """One configuration: duplicate blocks ``i..j-1``."""

    i: int
    j: int
    block_size: int
    score: float
    delta: float


def parse_block_range(spec: str | Sequence[int], n_layers: int) -> tuple[int, int]:
    """``"I0:J0"`` (half-open) or ``"a-b"`` (inclusive) original blocks -> the sweep's bounds
    ``(I0, J0)``: configs with ``I0 <= i < j <= J0``."""
    if isinstance(spec, str):
        if "," in spec:
            raise NeuroMagicsError(f"--blocks takes one range like 8:24, not {spec!r}.")
        blocks = parse_ranges(spec, n_layers)
        return blocks[0], blocks[-1] + 1
    low, high = (int(v) for v in spec)
    if not 0 <= low < high <= n_layers:
        raise NeuroMagicsError(f"--blocks {low}:{high} is outside this model: use I0:J0 with 0 <= I0 < J0 <= {n_layers}.")
    return low, high


@with_lock
def brainscan(
    subject: Subject,
    probe: str = "math",
    score: str = "logprob",
    *,
    items: str | Sequence[Mapping] | None = None,
    limit: int | None = None,
    blocks: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    times: int = 1,
    max_new_tokens: int = 64,
    save: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    progress: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> BrainScanResult:
    """Score every duplication config (i, j) of ``subject`` on a probe set.

    ``probe``: ``math``, ``facts``, ``text`` or a ``.jsonl`` path; ``items`` brings your
    own items instead (JSON lines / dicts, or passages for ``text``); ``limit`` keeps the
    first N. ``score``: ``logprob`` (teacher-forced answer, one forward per config, fast)
    or ``generate`` (greedy decoding under each program, graded by the item's scorer).
    ``blocks`` restricts the sweep to ``I0 <= i < j <= J0`` (original blocks: every config is
    a duplication of the plain model, whatever program it runs now; ``layers`` is the old
    spelling, accepted only under the identity program); ``times`` is how many extra
    passes the block gets. ``save`` writes the result after every finished start row i
    (atomically); ``resume`` continues a saved scan (and keeps saving to it). An existing
    ``save`` file is replaced only with ``overwrite=True``. The paths are checked before the
    sweep; if a write fails later, the sweep goes on in memory and a warning says so.

    Ctrl-C stops the sweep, leaves the model as it was, and returns the finished cells.
    """
    if score not in SCORE_MODES:
        raise NeuroMagicsError(f"Unknown --score {score!r}: use logprob or generate.")
    if times < 1:
        raise NeuroMagicsError(f"--times must be at least 1 (got {times}).")
    if max_new_tokens < 1:
        raise NeuroMagicsError(f"--max-new-tokens must be at least 1 (got {max_new_tokens}).")
    if batch_tokens < 1:
        raise NeuroMagicsError(f"batch_tokens must be at least 1 (got {batch_tokens}).")
    if workers is not None or ray_address is not None:
        from ..core.distributed import check_workers

        check_workers(subject, workers, ray_address)
    n_layers = subject.n_layers
    probe_set = load_probe(probe, items, limit)
    if score == "generate" and probe_set.is_text:
        raise NeuroMagicsError("Text passages are scored by their likelihood: use --score logprob with --probe text.")
    blocks = explicit_layer_word(subject.program, layers, blocks, old="--layers", new="--blocks")
    low, high = parse_block_range(blocks, n_layers) if blocks is not None else (0, n_layers)
    if times > 1:
        LayerProgram.duplicate(n_layers, low, high, times)  # the longest program must fit the limit
    if score == "logprob":
        batch = teacher_forced_batch(subject, probe_set)
    else:
        batch = prompt_batch(subject, probe_set, max_new_tokens)
    extra = {"max_new_tokens": max_new_tokens} if score == "generate" else {}
    metadata = run_metadata(
        subject, probe_set.prompts, program=list(range(n_layers)), probe=probe_set.name, score=score,
        times=times, items=probe_set.records(), layers=[low, high], **extra,
    )
    if resume is not None:
        result = _resumed(resume, metadata)
    else:
        result = BrainScanResult.empty(n_layers, len(probe_set.items), metadata)
    result._subject = weakref.ref(subject)
    save_path = _checkpoint_path(save, resume, metadata, overwrite)

    def checkpoint() -> None:
        nonlocal save_path
        if save_path is None:
            return
        try:
            result.save_atomic(save_path)
        except NeuroMagicsError as error:
            save_path = None
            warnings.warn(NeuroMagicsWarning(
                f"{error} The scan goes on and its result is kept in memory only: save it with result.save(PATH)."))

    todo = [(i, j) for i in range(low, high) for j in range(i + 1, high + 1) if not result.finished[i, j]]
    bar = ProgressBar(sum(_cost(i, j, n_layers, times) for i, j in todo), "brainscan", "block", enabled=progress)

    def record(i: int, j: int, item_scores: np.ndarray) -> None:
        result._record(i, j, item_scores)
        bar.update(_cost(i, j, n_layers, times))
        bar.set_postfix(f"{result.n_finished}/{result.n_configs} configs")

    def record_row(unit: tuple[int, list[int]], scored: list[tuple[int, np.ndarray]]) -> None:
        for j, item_scores in scored:
            record(unit[0], j, item_scores)
        checkpoint()

    try:
        rows = _sweep_rows(subject, probe_set, batch, score, times, batch_tokens, max_new_tokens)
        result._set_proxies(*rows.proxies())
        result._set_baseline(rows.baseline())
        if workers is None:
            for i, ends in _by_start(todo):
                for j, item_scores in rows.row(i, ends):
                    record(i, j, item_scores)
                checkpoint()
        else:
            from ..core.distributed import ShardedWork, run_sharded

            units = list(_by_start(todo))
            run_sharded(
                subject, ShardedWork(_worker_rows, (probe_set, score, times, batch_tokens, max_new_tokens)),
                units, [sum(_cost(i, j, n_layers, times) for j in ends) for i, ends in units],
                workers=workers, ray_address=ray_address, on_result=record_row,
            )
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        bar.close()
    checkpoint()
    return result


def _cost(i: int, j: int, n_layers: int, times: int) -> int:
    """Blocks a config runs beyond the shared prefix: its repeats and its suffix."""
    return (times - 1) * (j - i) + n_layers - i


def _by_start(cells: Sequence[tuple[int, int]]) -> Iterator[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = {}
    for i, j in cells:
        groups.setdefault(i, []).append(j)
    yield from sorted(groups.items())


def _even_chunks(values: list[int], most: int) -> list[list[int]]:
    """Split into the fewest chunks of at most ``most``, of nearly equal size."""
    n_chunks = math.ceil(len(values) / most)
    size = math.ceil(len(values) / n_chunks)
    return [values[k : k + size] for k in range(0, len(values), size)]


@torch.no_grad()
def _identity_states(subject: Subject, inputs: RunInputs) -> torch.Tensor:
    """``[L+1, batch, tokens, d]``: the residual state entering each block, then the last output."""
    out = run(subject, inputs, program=range(subject.n_layers),
              capture=Capture(sites=("resid_pre",), device=subject.device), logits_at=None)
    return torch.cat([out.captures["resid_pre"], out.resid[None]])


class _LengthGroup(NamedTuple):
    """Probe items of one length: their indices, their unpadded batch, what HF hands
    each block for it, and the identity run's layer inputs ``[L+1, items, tokens, d]``."""

    items: torch.Tensor
    batch: TeacherForcedBatch
    inputs: RunInputs
    states: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return self.batch.n_items * self.batch.n_tokens


def _sweep_rows(subject: Subject, probe_set: Probe, batch, score: str, times: int, batch_tokens: int,
                max_new_tokens: int) -> _LogprobRows | _GenerateRows:
    if score == "logprob":
        return _LogprobRows(subject, batch, times, batch_tokens)
    return _GenerateRows(subject, probe_set, batch, times, max_new_tokens)


def _worker_rows(subject: Subject, probe_set: Probe, score: str, times: int, batch_tokens: int,
                 max_new_tokens: int) -> Callable[[tuple[int, list[int]]], list[tuple[int, np.ndarray]]]:
    """What a Ray worker runs on its copy of the model: a start row ``(i, ends)`` -> its scored
    cells, computed exactly as the single-process sweep computes that row."""
    if score == "logprob":
        batch = teacher_forced_batch(subject, probe_set)
    else:
        batch = prompt_batch(subject, probe_set, max_new_tokens)
    rows = _sweep_rows(subject, probe_set, batch, score, times, batch_tokens, max_new_tokens)
    return lambda unit: list(rows.row(*unit))


class _LogprobRows:
    """The teacher-forced sweep: suffix runs per start i, per group of equal-length items (no
    padding: stacked copies of a padded batch would multiply its pad tokens), on chunks of
    ends j. A cell is finished once every group has scored it."""

    @torch.no_grad()
    def __init__(self, subject: Subject, batch: TeacherForcedBatch, times: int, batch_tokens: int) -> None:
        self.subject, self.batch, self.times, self.batch_tokens = subject, batch, times, batch_tokens
        self.groups = []
        for items, part in batch.by_length():
            inputs = prepare(subject, part.input_ids, part.attention_mask)
            self.groups.append(_LengthGroup(items, part, inputs, _identity_states(subject, inputs)))

    @torch.no_grad()
    def proxies(self) -> tuple[np.ndarray, np.ndarray]:
        tokens = torch.cat([group.states.flatten(1, 2) for group in self.groups], dim=1)  # [L+1, real tokens, d]
        return proxy_metrics(tokens[:, None], torch.ones(1, tokens.shape[1], dtype=torch.long))

    @torch.no_grad()
    def baseline(self) -> np.ndarray:
        baseline = torch.empty(self.batch.n_items, dtype=torch.float64)
        for group in self.groups:
            baseline[group.items.cpu()] = _logprob_scores(self.subject, group.states[-1], group.batch, 1)
        return baseline.numpy()

    @torch.no_grad()
    def row(self, i: int, ends: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(j, item scores)`` for each end in ``ends``, as each cell finishes."""
        subject, groups, times = self.subject, self.groups, self.times
        suffix = list(range(i, subject.n_layers))
        runs = sorted(
            ((chunk[-1], g, chunk) for g, group in enumerate(groups)
             for chunk in _even_chunks(ends, max(1, self.batch_tokens // group.n_tokens))),
            key=lambda run_: run_[:2],
        )
        scores = {j: torch.empty(self.batch.n_items, dtype=torch.float64) for j in ends}
        missing = {j: len(groups) for j in ends}
        for _, g, chunk in runs:
            group = groups[g]
            starts = [
                group.states[j] if times == 1
                else run(subject, group.inputs, program=list(range(i, j)) * (times - 1), resid=group.states[j],
                         logits_at=None).resid
                for j in chunk
            ]
            stacked = prepare(subject, group.batch.input_ids.repeat(len(chunk), 1),
                              group.batch.attention_mask.repeat(len(chunk), 1))
            out = run(subject, stacked, program=suffix, resid=torch.cat(starts), logits_at=None)
            rows = _logprob_scores(subject, out.resid, group.batch, len(chunk)).view(len(chunk), -1)
            for j, row in zip(chunk, rows):
                scores[j][group.items.cpu()] = row
                missing[j] -= 1
                if missing[j] == 0:
                    yield j, scores.pop(j).numpy()


def _logprob_scores(subject: Subject, resid: torch.Tensor, batch: TeacherForcedBatch, repeats: int) -> torch.Tensor:
    """Mean answer log-prob per row of ``resid`` (``repeats`` stacked copies of the batch).
    Only the real answer positions are unembedded (no padding), a bounded number at a
    time, and scored with logsumexp rather than a full log-softmax."""
    valid = batch.valid.repeat(repeats, 1)
    rows, slots = valid.nonzero(as_tuple=True)
    hidden = resid[rows, batch.positions.repeat(repeats, 1)[rows, slots]]  # [answer tokens, d]
    targets = batch.targets.repeat(repeats, 1)[rows, slots]
    per_step = max(1, _LOGITS_BUDGET // subject.vocab_size)
    token_scores = []
    for start in range(0, hidden.shape[0], per_step):
        logits = unembed(subject, hidden[None, start : start + per_step], "all")[0].float()
        chosen = logits.gather(-1, targets[start : start + per_step, None]).squeeze(-1)
        token_scores.append(chosen - torch.logsumexp(logits, dim=-1))
    totals = torch.zeros(valid.shape[0], dtype=torch.float64, device=resid.device)
    totals.index_add_(0, rows, torch.cat(token_scores).double())
    return (totals / valid.sum(-1).double()).cpu()


class _GenerateRows:
    """The generating sweep: greedy decoding under each config's program, graded per item."""

    def __init__(self, subject: Subject, probe_set: Probe, prompts, times: int, max_new_tokens: int) -> None:
        self.subject, self.probe_set, self.prompts = subject, probe_set, prompts
        self.times, self.max_new_tokens = times, max_new_tokens

    @torch.no_grad()
    def proxies(self) -> tuple[np.ndarray, np.ndarray]:
        prompts = self.prompts
        states = _identity_states(self.subject, prepare(self.subject, prompts["input_ids"], prompts["attention_mask"]))
        return proxy_metrics(states, prompts["attention_mask"])

    @torch.no_grad()
    def baseline(self) -> np.ndarray:
        return self._scores(LayerProgram.identity(self.subject.n_layers))

    @torch.no_grad()
    def row(self, i: int, ends: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        for j in ends:
            yield j, self._scores(LayerProgram.duplicate(self.subject.n_layers, i, j, self.times))

    def _scores(self, program: LayerProgram) -> np.ndarray:
        return _generate_scores(self.subject, self.probe_set, self.prompts, program, self.max_new_tokens)


def _generate_scores(subject: Subject, probe: Probe, prompts, program: LayerProgram, max_new_tokens: int) -> np.ndarray:
    """Greedy answers under ``program`` (HF generate, KV cache on), graded per item."""
    from transformers import StoppingCriteriaList

    width = prompts["input_ids"].shape[1]
    tokenizer = subject.tokenizer
    with subject.program_applied(program):
        output = subject.model.generate(
            **prompts, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            stopping_criteria=StoppingCriteriaList([StopAtAnswerEnd(subject, width)]),
        )
    texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return np.array([credit(item, text) for item, text in zip(probe.items, texts)], dtype=np.float64)


def _resumed(path: str | Path, metadata: dict[str, Any]) -> BrainScanResult:
    found = _npz_path(path)
    if not found.exists():
        raise NeuroMagicsError(f"No file {str(path)!r} to --resume: give the path a scan was saved to with --save.")
    saved = BrainScanResult.load(found)
    difference = _sweep_difference(saved, metadata)
    if difference:
        raise NeuroMagicsError(
            f"{path} was a scan with different {difference}: resume with the same model, probe and score, "
            f"or start a new scan."
        )
    saved.metadata.update({key: metadata[key] for key in ("layers", "created", "versions", "device", "dtype")})
    saved.interrupted = False
    return saved


def _sweep_difference(saved: Result, metadata: dict[str, Any]) -> str | None:
    """What makes ``saved`` another sweep than the one ``metadata`` describes (None: the same)."""
    if not isinstance(saved, BrainScanResult):
        return f"kind ({saved.kind} result)"
    for key in _RESUME_KEYS:
        if saved.metadata.get(key) != metadata.get(key):
            return "probe items" if key == "items" else f"{key} {saved.metadata.get(key)!r} (now {metadata.get(key)!r})"
    size, n_items = metadata["n_layers"] + 1, len(metadata["items"])
    if saved.scores.shape != (size, size) or saved.item_scores.shape != (size, size, n_items):
        return f"array shapes ({saved.scores.shape} scores)"
    return None


def _checkpoint_path(save: str | Path | None, resume: str | Path | None, metadata: dict[str, Any],
                     overwrite: bool) -> Path | None:
    """Where the sweep's checkpoints go, checked before any work: ``save``, else ``resume``.
    An existing file is replaced only when it is the scan being resumed or with ``overwrite``."""
    if save is None and resume is None:
        return None
    given = user_path(save if save is not None else resume, "--save" if save is not None else "--resume")
    if given.is_dir():
        raise NeuroMagicsError(f"--save {str(given)!r} is a folder: give a file name inside it, e.g. {given / 'scan.npz'}.")
    target = _npz_path(given)
    replaces_resumed = resume is not None and target.exists() and target.resolve() == _npz_path(resume).resolve()
    if target.exists() and not target.is_dir() and not (overwrite or replaces_resumed):
        try:
            difference = _sweep_difference(load_result(target), metadata)
        except NeuroMagicsError:
            difference = "content (it is not a saved brain scan)"
        what = f"a scan with different {difference}" if difference else "a checkpoint of this same scan"
        raise NeuroMagicsError(
            f"--save {target} already exists and holds {what}: "
            + ("continue it with --resume instead, " if not difference else "")
            + "pick a new path, or add --overwrite (overwrite=True) to replace it."
        )
    return check_file_target(target, "--save", overwrite=True)


def _npz_path(path: str | Path, what: str = "--resume") -> Path:
    """The file as named when it exists (``--resume binary.bin``), else with ``.npz`` added
    (what ``save`` writes for a bare name)."""
    path = user_path(path, what)
    return path if path.suffix == ".npz" or path.is_file() else path.with_name(path.name + ".npz")


@dataclass(repr=False, eq=False)
class BrainScanResult(Result):
    """Scores of every duplication config; ``delta`` is the (L+1) x (L+1) map.

    ``scores[i, j]``: probe score of duplicating ``i..j-1`` (the diagonal holds the
    baseline, NaN below it and where a config was not run). ``item_scores`` keeps the
    per-item scores; ``block_influence`` and ``angular_distance`` are the proxies.
    """

    kind = "brainscan"

    scores: np.ndarray  # [L+1, L+1]
    item_scores: np.ndarray  # [L+1, L+1, items]
    baseline_items: np.ndarray  # [items]: the untouched model
    block_influence: np.ndarray  # [L]
    angular_distance: np.ndarray  # [L+1, L+1]
    metadata: dict[str, Any]
    interrupted: bool = False
    #: The scanned model, held weakly: set by ``brainscan``, empty after loading from a file.
    _subject: weakref.ReferenceType[Subject] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        for name in ("scores", "item_scores", "baseline_items", "block_influence", "angular_distance"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))

    @classmethod
    def empty(cls, n_layers: int, n_items: int, metadata: dict[str, Any]) -> BrainScanResult:
        size = n_layers + 1
        return cls(
            np.full((size, size), np.nan), np.full((size, size, n_items), np.nan), np.full(n_items, np.nan),
            np.full(n_layers, np.nan), np.full((size, size), np.nan), metadata,
        )

    # -- filling in ------------------------------------------------------------------

    def _record(self, i: int, j: int, item_scores: np.ndarray) -> None:
        self.item_scores[i, j] = item_scores
        self.scores[i, j] = float(np.mean(item_scores))

    def _set_baseline(self, item_scores: np.ndarray) -> None:
        """Set the untouched model's scores; a resumed scan must reproduce its own."""
        if not np.isnan(self.baseline_items).all() and not np.allclose(item_scores, self.baseline_items, atol=1e-3):
            raise NeuroMagicsError(
                "This model scores the probe differently from the saved scan (different weights or dtype?): "
                "start a new scan instead of resuming."
            )
        self.baseline_items = np.asarray(item_scores, dtype=np.float64)
        diagonal = np.arange(self.n_layers + 1)
        self.item_scores[diagonal, diagonal] = self.baseline_items
        self.scores[diagonal, diagonal] = self.baseline

    def _set_proxies(self, block_influence: np.ndarray, angular_distance: np.ndarray) -> None:
        self.block_influence, self.angular_distance = block_influence, angular_distance

    def save_atomic(self, path: str | Path) -> Path:
        """A checkpoint: replace ``path`` (checked when the sweep began) with this scan so far;
        it is written beside and renamed, so an interrupt never leaves half a file. The path is
        kept as named (``--resume binary.bin`` keeps saving to binary.bin)."""
        return self.replace_file(Path(path))

    # -- reading ---------------------------------------------------------------------

    @property
    def subject(self) -> Subject | None:
        """The model this scan was made on, while it is loaded (None after it was unloaded, or
        when the scan was loaded from a file)."""
        subject = None if self._subject is None else self._subject()
        return None if subject is None or subject.released else subject

    @property
    def n_layers(self) -> int:
        return self.scores.shape[0] - 1

    @property
    def times(self) -> int:
        return int(self.metadata.get("times", 1))

    @property
    def baseline(self) -> float:
        return float(np.mean(self.baseline_items))

    @property
    def delta(self) -> np.ndarray:
        """``(L+1) x (L+1)``: score minus baseline; NaN where undefined or not run."""
        return self.scores - self.baseline

    @property
    def finished(self) -> np.ndarray:
        """Boolean ``(L+1) x (L+1)``: configs (i < j) that have a score."""
        return np.triu(~np.isnan(self.scores), k=1)

    @property
    def n_finished(self) -> int:
        return int(self.finished.sum())

    @property
    def n_configs(self) -> int:
        """Configs in the requested range (``--blocks``)."""
        low, high = self.metadata.get("layers", [0, self.n_layers])
        return (high - low) * (high - low + 1) // 2

    @property
    def complete(self) -> bool:
        low, high = self.metadata.get("layers", [0, self.n_layers])
        return bool(self.finished[low : high + 1, low : high + 1].sum() == self.n_configs)

    def program(self, i: int, j: int) -> LayerProgram:
        """The layer program of config (i, j)."""
        return LayerProgram.duplicate(self.n_layers, i, j, self.times)

    def best(self, k: int = 5) -> list[BrainScanCell]:
        """The k finished configs with the highest delta, best first."""
        rows, cols = np.nonzero(self.finished)
        delta = self.delta[rows, cols]
        order = np.argsort(-delta, kind="stable")[:k]
        return [
            BrainScanCell(int(rows[n]), int(cols[n]), int(cols[n] - rows[n]), float(self.scores[rows[n], cols[n]]), float(delta[n]))
            for n in order
        ]

    def to_numpy(self) -> np.ndarray:
        return self.delta

    def to_pandas(self):
        """One row per finished config: i, j, block_size, steps, score, delta (baseline in ``attrs``)."""
        import pandas as pd

        rows, cols = np.nonzero(self.finished)
        frame = pd.DataFrame({
            "i": rows, "j": cols, "block_size": cols - rows,
            "steps": self.n_layers + self.times * (cols - rows),
            "score": self.scores[rows, cols], "delta": self.delta[rows, cols],
        })
        frame.attrs["baseline"] = self.baseline
        return frame

    # -- acting on the model ---------------------------------------------------------

    def apply(self, i: int, j: int, subject: Subject | None = None, prompts: Sequence[str] | None = None, *,
              on_update: Callable[[Any], None] | None = None):
        """Apply config (i, j) to the model (it stays applied) and return its diff against the
        original model (``nm.compare``; ``on_update`` sees it stream), whatever program was
        applied before. Uses the scanned model unless ``subject`` is given."""
        if not 0 <= i < j <= self.n_layers:
            raise NeuroMagicsError(f"Config ({i}, {j}) is not a duplication: need 0 <= i < j <= {self.n_layers}.")
        subject = subject or self.subject
        if subject is None:
            raise NeuroMagicsError("The model this scan was made on is not loaded (unloaded, or the scan came from a "
                                   "file): load it and pass subject=.")
        if subject.n_layers != self.n_layers:
            raise NeuroMagicsError(f"This scan is of a {self.n_layers}-layer model; that model has {subject.n_layers} layers.")
        from .diffing import compare

        program, original = self.program(i, j), LayerProgram.identity(self.n_layers)
        with subject.lock:  # the diff and the program change are one action
            diff = compare(subject, lambda: subject.program_applied(program), prompts,
                           label_before="original", label_after=f"duplicate {i}:{j}",
                           before=lambda: subject.program_applied(original), on_update=on_update)
            subject.set_program(program)
        return diff

    def __repr__(self) -> str:
        probe, score = self.metadata.get("probe", "?"), self.metadata.get("score", "?")
        text = (f"BrainScanResult({self.metadata.get('model', '?')}, probe {probe} ({len(self.baseline_items)} items, "
                f"{score}): {self.n_finished}/{self.n_configs} configs")
        if self.interrupted:
            text += " (interrupted)"
        if not np.isnan(self.baseline):
            text += f"; baseline {self.baseline:.4f}"
        best = self.best(1)
        if best:
            text += f"; best {best[0].i}:{best[0].j} (Δ {best[0].delta:+.4f})"
        return text + ")"

    # -- persistence -----------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "scores": self.scores, "item_scores": self.item_scores, "baseline_items": self.baseline_items,
            "block_influence": self.block_influence, "angular_distance": self.angular_distance,
        }

    def _fields(self) -> dict[str, Any]:
        return {"interrupted": self.interrupted}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> BrainScanResult:
        return cls(arrays["scores"], arrays["item_scores"], arrays["baseline_items"], arrays["block_influence"],
                   arrays["angular_distance"], metadata, interrupted=fields.get("interrupted", False))
