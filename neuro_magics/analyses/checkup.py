"""%checkup: a health report of a model's internals from a few batched passes over a small corpus.

One no-grad pass under eager attention captures, per program step, the residual stream, the
attention weights, the per-head outputs and the MLP neurons, and reduces them batch by batch
(nothing corpus-sized is kept); one gradient pass gives each head's importance; the weights
give each matrix's spectrum. Findings, each with a severity, a one-line explanation, where it
is (layer / head / token / dim), the array that shows it and an action one click away:

- massive activations (Sun et al. 2024, "Massive activations in LLMs"): ``|h| > 100`` and
  ``> 1000 x`` the layer's median ``|h|``; action: set them to their corpus mean (or zero);
- attention sinks: mean attention from every later query to the first token ``> 0.5``
  (Xiao et al. 2023 name them; uniform attention over 64 tokens gives about 0.07);
- dead heads: importance ``|dL/d gate|`` (Michel et al. 2019) below ``1e-3 x`` the median
  head's; redundant heads: the cosine of two heads' outputs (what they write into the
  residual stream) over the corpus ``> 0.95``; action: ablate and diff;
- dead MLP neurons: ``max |a|`` over the corpus below ``1e-3 x`` the layer's median neuron's
  (exactly 0 for a neuron whose gate never opens); action: ablate and diff (a no-op check);
- saturated MLP neurons: stuck at one value on every token (spread ``std < 0.05 x |mean|``)
  while as strong as the layer's typical neuron (``|mean| >=`` its median RMS): a neuron
  driven into its nonlinearity's flat end, or a bias in disguise, carrying no information
  about the token; action: zero it and diff;
- residual norm growth, Block Influence per layer (Men et al. 2024, ShortGPT) and the depth
  where the logit lens settles (its top-1 agrees with the output's for most tokens): info;
- weight spectra: the power-law exponent alpha of each matrix's eigenvalues of ``W^T W``
  (Martin & Mahoney 2021; WeightWatcher's fit: Clauset et al. 2009 MLE with ``xmin`` at the
  smallest KS distance); outside ``[2, 6]`` is reported as info (WeightWatcher's range for
  well-trained layers; a random initialisation has no power-law tail and lands above 6).

``weightwatcher`` itself is not used: it pulls matplotlib, powerlaw and a progress-bar package
for one fit of twenty lines.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.adapters import linear_modules
from ..core.distributed import ShardedWork, check_workers, run_units
from ..core.offload import weight_float64
from ..core.errors import NeuroMagicsError
from ..core.interventions import Hook, Intervention, register, rebuilder, replacing_output
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, prepare, run, unembed
from ..core.subject import Subject, with_lock
from ..core.proxies import proxy_metrics
from ..core.corpus import load_corpus
from ..core.matrices import attention_matrices

#: Sun et al. 2024: an activation is massive when ``|h| > 100`` and about ``1000x`` the median.
MASSIVE_ABSOLUTE = 100.0
MASSIVE_RATIO = 1000.0
#: Mean attention to the first token above this marks a sink head.
SINK_MASS = 0.5
#: Importance below this fraction of the median head's marks a dead head.
DEAD_HEAD_FRACTION = 1e-3
#: Cosine between two heads' outputs above this marks them redundant.
REDUNDANT_COSINE = 0.95
#: ``max |a|`` below this fraction of the layer's median neuron's marks a dead neuron.
DEAD_NEURON_FRACTION = 1e-3
#: A neuron whose spread over the corpus is below this fraction of its mean is saturated (if strong).
SATURATED_SPREAD = 0.05
#: WeightWatcher's range of alpha for well-trained layers.
ALPHA_RANGE = (2.0, 6.0)
#: The logit lens has settled from the first layer whose top-1 agrees with the output's this often.
LENS_AGREEMENT = 0.5
SEVERITIES = ("high", "medium", "info")
LENS_POSITIONS = 4  # last positions of each text read through the logit lens


@dataclass(frozen=True)
class Finding:
    """One thing the checkup found: where it is, which array shows it, and what to try."""

    severity: str  # "high", "medium" or "info"
    kind: str  # "massive_activation", "attention_sink", "dead_head", ...
    title: str
    explanation: str
    view: str  # the CheckupResult array that shows it
    layer: int | None = None  # program step
    head: int | None = None
    token: int | None = None  # position in the text
    dim: int | None = None
    value: float | None = None
    action: dict[str, Any] | None = None  # what ``CheckupResult.apply`` installs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the power-law fit ---------------------------------------------------------------------------


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


# -- the massive-activation fix as an intervention ------------------------------------------------


@rebuilder("massive")
def _massive_fix(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """At each listed block's output, every cell of the listed dims whose magnitude is above the
    block's threshold is replaced by the recorded value (the corpus mean of those cells, or 0)."""
    hooks = []
    for entry in arguments["blocks"]:
        dims = torch.tensor(entry["dims"], dtype=torch.long, device=subject.device)
        values = torch.tensor(entry["values"], dtype=subject.dtype, device=subject.device)
        hooks.append(Hook(subject.blocks[entry["block"]], "forward", _clamp_hook(dims, values, entry["threshold"])))
    return Intervention("massive", description, arguments, hooks)


def _clamp_hook(dims: torch.Tensor, values: torch.Tensor, threshold: float):
    def clamped(hidden: torch.Tensor) -> torch.Tensor:
        index = dims.to(hidden.device)  # the block's device (a model spread over GPUs)
        chosen = hidden[..., index]
        new = hidden.clone()
        new[..., index] = torch.where(chosen.abs() > threshold, values.to(device=hidden.device, dtype=hidden.dtype),
                                      chosen)
        return new

    return replacing_output(clamped)


# -- the result -----------------------------------------------------------------------------------


@dataclass(repr=False, eq=False)
class CheckupResult(Result):
    """Per-step and per-head statistics over the corpus and the findings read from them.

    Arrays (L program steps, H heads): ``resid_max [L, d]`` max ``|h|`` per dim, ``resid_median
    [L]`` (each batch's median ``|h|``, averaged with the batches' token counts as weights),
    ``resid_norm [L]`` mean norm without the first token, ``first_norm [L]`` the first
    token's; ``sink_mass, entropy, importance [L, H]``; ``head_cosine [L, H, H]``; ``neuron_max,
    neuron_mean, neuron_std [L, N]``; ``block_influence [L]``; ``lens_agreement [L]``; ``alpha
    [blocks, matrices]``.
    """

    kind = "checkup"

    findings: list[Finding]
    resid_max: np.ndarray
    resid_median: np.ndarray
    resid_norm: np.ndarray
    first_norm: np.ndarray
    sink_mass: np.ndarray
    entropy: np.ndarray
    importance: np.ndarray
    head_cosine: np.ndarray
    neuron_max: np.ndarray
    neuron_mean: np.ndarray
    neuron_std: np.ndarray
    block_influence: np.ndarray
    lens_agreement: np.ndarray
    alpha: np.ndarray
    matrix_names: list[str]
    program_steps: list[int]
    metadata: dict[str, Any]
    _subject: weakref.ReferenceType[Subject] | None = field(default=None, init=False)

    ARRAYS = ("resid_max", "resid_median", "resid_norm", "first_norm", "sink_mass", "entropy", "importance",
              "head_cosine", "neuron_max", "neuron_mean", "neuron_std", "block_influence", "lens_agreement", "alpha")

    @property
    def subject(self) -> Subject | None:
        """The model checked, while it is loaded (None after loading from a file)."""
        subject = None if self._subject is None else self._subject()
        return None if subject is None or subject.released else subject

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def to_pandas(self):
        """One row per finding."""
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.findings],
                            columns=list(Finding.__dataclass_fields__))

    def to_numpy(self) -> np.ndarray:
        return self.sink_mass

    def apply(self, index: int, *, mode: str | None = None, subject: Subject | None = None,
              prompts: Sequence[str] | None = None, max_new_tokens: int = 16):
        """Install finding ``index``'s action on the model and return its before/after diff
        (``nm.compare``). ``mode`` overrides a massive-activation fix's ``mean`` / ``zero``.
        The diff and the install are one step under the model's lock; a failure installs nothing."""
        if not isinstance(index, int) or not 0 <= index < len(self.findings):
            raise NeuroMagicsError(f"No finding {index!r}: this checkup has findings 0-{len(self.findings) - 1}.")
        finding = self.findings[index]
        if finding.action is None:
            raise NeuroMagicsError(f"Finding {index} ({finding.title}) has no action: it is for reading.")
        subject = subject or self.subject
        if subject is None:
            raise NeuroMagicsError("The model this checkup was made on is not loaded (unloaded, or the result came "
                                   "from a file): load it and pass subject=.")
        if subject.name != self.metadata.get("model") or subject.n_layers != self.metadata.get("n_layers"):
            raise NeuroMagicsError(f"This checkup is of {self.metadata.get('model')}; that model is {subject.name}.")
        from .diffing import compare

        with subject.lock:
            intervention = self.action_intervention(index, subject, mode=mode)
            diff = compare(subject, lambda: intervention.applied(subject), prompts,
                           max_new_tokens=max_new_tokens, label_after=intervention.description)
            intervention.install(subject)
        return diff

    def action_intervention(self, index: int, subject: Subject, *, mode: str | None = None) -> Intervention:
        """The (not installed) intervention behind finding ``index``'s action."""
        action = dict(self.findings[index].action or {})
        if action.get("kind") == "massive":
            mode = mode or action["mode"]
            if mode not in ("mean", "zero"):
                raise NeuroMagicsError(f"Unknown mode {mode!r}: set massive activations to their mean or zero.")
            blocks = [{**entry, "values": entry["means"] if mode == "mean" else [0.0] * len(entry["dims"])}
                      for entry in action["blocks"]]
            dims = sorted({d for entry in blocks for d in entry["dims"]})
            description = (f"set massive activations of dim{'s' if len(dims) > 1 else ''} "
                           f"{','.join(map(str, dims))} to {'their mean' if mode == 'mean' else 'zero'}")
            return _massive_fix(subject, {"blocks": blocks, "mode": mode}, description)
        from .interventions import ablate

        if action.get("kind") == "ablate_heads":
            return ablate(subject, heads=[tuple(p) for p in action["heads"]], install=False)
        if action.get("kind") == "ablate_neurons":
            return ablate(subject, neurons=[tuple(p) for p in action["neurons"]], install=False)
        raise NeuroMagicsError(f"Unknown action {action.get('kind')!r}.")

    def __repr__(self) -> str:
        counts = self.counts()
        lines = [f"CheckupResult({self.metadata.get('model', '?')}, {self.metadata.get('n_texts', '?')} texts, "
                 f"{self.metadata.get('n_tokens', '?')} tokens): {counts['high']} high, {counts['medium']} medium, "
                 f"{counts['info']} info"]
        lines += [f"  {k}. [{f.severity}] {f.title}" for k, f in enumerate(self.findings)]
        return "\n".join(lines)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def _fields(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "matrix_names": self.matrix_names,
                "program_steps": self.program_steps}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> CheckupResult:
        return cls([Finding(**f) for f in fields["findings"]], *(arrays[name] for name in cls.ARRAYS),
                   list(fields["matrix_names"]), list(fields["program_steps"]), metadata)


# -- the passes -----------------------------------------------------------------------------------


@dataclass
class _Totals:
    """Reductions of one batch (statistics and importance passes), or of every batch so far
    merged in batch order by ``_merge``: the single process and Ray workers make the same
    per-batch partials and the driver merges them in the same order, so the sums agree bit for bit."""

    resid_max: torch.Tensor = None
    medians: list = field(default_factory=list)  # (median [L], weight)
    norm_sum: torch.Tensor = None
    norm_count: float = 0.0
    first_sum: torch.Tensor = None
    first_count: float = 0.0
    sink_sum: torch.Tensor = None
    entropy_sum: torch.Tensor = None
    query_count: float = 0.0
    gram: torch.Tensor = None
    neuron_max: torch.Tensor = None
    neuron_sum: torch.Tensor = None  # float64 [L, N], over real tokens
    neuron_square_sum: torch.Tensor = None
    influence_sum: np.ndarray = None
    token_count: float = 0.0
    lens_hits: torch.Tensor = None
    lens_count: float = 0.0
    massive: dict = field(default_factory=dict)  # (step, dim) -> [count, sum, max, positions{}, pieces{}]
    block_importance: np.ndarray = None  # float64 [blocks, heads], summed over texts


@with_lock
def checkup(
    subject: Subject,
    corpus: str | Sequence[str] | None = None,
    *,
    max_texts: int = 24,
    max_tokens: int = 48,
    batch_size: int = 8,
    spectra: bool = True,
    workers: int | None = None,
    ray_address: str | None = None,
) -> CheckupResult:
    """Check ``subject`` on ``max_texts`` texts of ``corpus`` (default: the built-in corpus,
    spread over its genres), each cut to ``max_tokens`` tokens. See the module docstring for
    what is found and the thresholds. ``workers``: run the corpus batches on that many Ray
    workers (at ``ray_address``, else a local cluster), each with a copy of the model; same
    numbers, a dead worker's batch re-done (the spectra are computed here)."""
    if subject.tokenizer is None:
        raise NeuroMagicsError("The checkup reads text: this model has no tokenizer.")
    for name, value, low in (("max_texts", max_texts, 1), ("max_tokens", max_tokens, 2), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or value < low:
            raise NeuroMagicsError(f"{name} must be an integer of at least {low} (got {value!r}).")
    if workers is not None and not isinstance(workers, int):
        raise NeuroMagicsError(f"workers must be a whole number of Ray workers (got {workers!r}).")
    check_workers(subject, workers, ray_address)
    loaded = load_corpus(corpus)
    picks = np.unique(np.linspace(0, len(loaded) - 1, min(max_texts, len(loaded))).round().astype(int))
    texts = [loaded.texts[k] for k in picks]
    if subject.context_length is not None:
        max_tokens = min(max_tokens, subject.context_length)
    rows = [ids[:max_tokens] for ids in subject.tokenizer(texts, padding=False)["input_ids"]]
    rows = [row for row in rows if len(row) >= 2]
    if not rows:
        raise NeuroMagicsError("Every text is shorter than two tokens: give longer texts.")
    batches = [rows[k:k + batch_size] for k in range(0, len(rows), batch_size)]
    steps = list(subject.program.steps)
    n_blocks = subject.n_layers
    with ProgressBar(2 * len(batches) + (n_blocks if spectra else 0), "checkup", "pass", leave=False) as bar:
        totals = _corpus_passes(subject, batches, bar, workers, ray_address)
        alpha, names = np.full((0, 0), np.nan), []
        if spectra:
            alpha, names = _spectra(subject, bar)
    importance = (totals.block_importance / len(rows))[steps]
    n_tokens = int(sum(len(r) for r in rows))
    metadata = run_metadata(subject, texts, corpus=loaded.name, n_texts=len(rows), n_tokens=n_tokens,
                            max_tokens=max_tokens)
    arrays = {**_finish(totals), "importance": importance.astype(np.float32), "alpha": alpha.astype(np.float32)}
    findings = _findings(arrays, names, steps, totals.massive)
    result = CheckupResult(findings, **arrays, matrix_names=names, program_steps=steps, metadata=metadata)
    result._subject = weakref.ref(subject)
    return result


class _BatchPasses:
    """The statistics and importance passes of one corpus batch, into a fresh ``_Totals``.
    The single process and every Ray worker compute a batch with this."""

    def __init__(self, subject: Subject, batches: list[list[list[int]]]) -> None:
        self.subject, self.batches = subject, batches
        self.steps = list(subject.program.steps)
        self.out_proj: dict[int, torch.Tensor] = {}  # each block's output projection, per head

    def __call__(self, index: int) -> _Totals:
        batch = _padded(self.subject, self.batches[index])
        with self.subject.attention_implementation("eager"):
            part = _statistics_pass(self.subject, batch, self.steps, self.out_proj)
        part.block_importance = _importance_pass(self.subject, batch)
        return part


def _corpus_passes(subject: Subject, batches: list[list[list[int]]], bar: ProgressBar, workers: int | None,
                   ray_address: str | None) -> _Totals:
    """Every batch's partial, here or on Ray workers, merged in batch order: a batch that comes
    back early waits until every batch before it is merged, so the sums are the same either way."""
    waiting: dict[int, _Totals] = {}
    totals, merged = None, 0

    def record(index: int, part: _Totals) -> None:
        nonlocal totals, merged
        waiting[index] = part
        bar.update(2)
        while merged in waiting:
            totals = _merge(totals, waiting.pop(merged))
            merged += 1

    units = list(range(len(batches)))
    costs = [len(batch) * max(len(row) for row in batch) for batch in batches]  # padded tokens
    run_units(subject, ShardedWork(_BatchPasses, (batches,)), units, costs, workers=workers, ray_address=ray_address,
              on_result=record)
    return totals


def _merge(totals: _Totals | None, part: _Totals) -> _Totals:
    """``totals`` (every batch before ``part``'s) with ``part`` added; the first batch's is the total."""
    if totals is None:
        return part
    totals.resid_max = torch.maximum(totals.resid_max, part.resid_max)
    totals.medians.extend(part.medians)
    for name in ("norm_sum", "norm_count", "first_sum", "first_count", "sink_sum", "entropy_sum", "query_count",
                 "gram", "neuron_sum", "neuron_square_sum", "influence_sum", "token_count", "lens_hits", "lens_count",
                 "block_importance"):
        setattr(totals, name, getattr(totals, name) + getattr(part, name))
    totals.neuron_max = torch.maximum(totals.neuron_max, part.neuron_max)
    for key, found in part.massive.items():
        entry = totals.massive.setdefault(key, {"count": 0, "sum": 0.0, "max": 0.0, "threshold": 0.0,
                                                "positions": {}, "pieces": {}})
        entry["count"] += found["count"]
        entry["sum"] += found["sum"]
        entry["max"] = max(entry["max"], found["max"])
        entry["threshold"] = max(entry["threshold"], found["threshold"])
        for where in ("positions", "pieces"):
            for value, count in found[where].items():
                entry[where][value] = entry[where].get(value, 0) + count
    return totals


def _finish(totals: _Totals) -> dict[str, np.ndarray]:
    """The reductions as per-step arrays (float32)."""
    medians = np.stack([m for m, _ in totals.medians])
    weights = np.array([w for _, w in totals.medians], dtype=np.float64)
    diagonal = torch.diagonal(totals.gram, dim1=1, dim2=2).clamp_min(1e-30).sqrt()
    neuron_mean = totals.neuron_sum / totals.token_count
    arrays = {
        "resid_max": totals.resid_max,
        "resid_median": (medians * weights[:, None]).sum(0) / weights.sum(),
        "resid_norm": totals.norm_sum / max(totals.norm_count, 1),
        "first_norm": totals.first_sum / max(totals.first_count, 1),
        "sink_mass": totals.sink_sum / max(totals.query_count, 1),
        "entropy": totals.entropy_sum / max(totals.query_count, 1),
        "head_cosine": totals.gram / (diagonal[:, :, None] * diagonal[:, None, :]),
        "neuron_max": totals.neuron_max,
        "neuron_mean": neuron_mean,
        "neuron_std": (totals.neuron_square_sum / totals.token_count - neuron_mean**2).clamp_min(0).sqrt(),
        "block_influence": totals.influence_sum / totals.token_count,
        "lens_agreement": totals.lens_hits / max(totals.lens_count, 1),
    }
    return {name: np.asarray(value, dtype=np.float32) for name, value in arrays.items()}


def _padded(subject: Subject, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and mask (as ``Subject.encode`` pads)."""
    width = max(len(r) for r in batch)
    ids = torch.tensor([[subject.pad_token_id] * (width - len(r)) + list(r) for r in batch], device=subject.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in batch], device=subject.device)
    return ids, mask


@torch.no_grad()
def _statistics_pass(subject: Subject, batch, steps: list[int], out_proj: dict) -> _Totals:
    """One batch's reductions under eager attention (``out_proj`` caches each block's output
    projection per head)."""
    ids, mask = batch
    totals = _Totals()
    inputs = prepare(subject, ids, mask)
    output = run(subject, inputs, capture=Capture(sites=("resid_post", "attn_weights", "heads", "neurons"),
                                                  dtype=torch.float32), logits_at=None)
    valid = mask.bool().cpu()
    first = valid.float().argmax(-1)  # first real token of each row
    resid = output.captures["resid_post"]  # [L, B, T, d]
    magnitude = resid.abs()
    totals.resid_max = magnitude.masked_fill(~valid[None, :, :, None], 0).amax(dim=(1, 2))
    cells = magnitude[:, valid]  # [L, M, d]
    median = cells.flatten(1).median(-1).values.numpy()
    totals.medians = [(median, cells.shape[1])]
    _collect_massive(subject, totals, magnitude, resid, valid, first, median, ids)
    norms = resid.norm(dim=-1)  # [L, B, T]
    is_first = torch.zeros_like(valid)
    is_first[torch.arange(len(first)), first] = True
    rest = valid & ~is_first
    totals.norm_sum = (norms * rest).sum(dim=(1, 2))
    totals.norm_count = float(rest.sum())
    totals.first_sum = (norms * is_first).sum(dim=(1, 2))
    totals.first_count = float(is_first.sum())
    # attention [L, B, H, Tq, Tk], read from every query after the first real token
    weights = output.captures["attn_weights"]
    to_first = weights.gather(-1, first.view(1, -1, 1, 1, 1).expand(*weights.shape[:-1], 1))[..., 0]
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1)
    queries = rest[None, :, None, :].float()
    totals.sink_sum = (to_first * queries).sum(dim=(1, 3))
    totals.entropy_sum = (entropy * queries).sum(dim=(1, 3))
    totals.query_count = float(rest.sum())
    # each head's output as written into the stream: its slice of the output projection
    heads = output.captures["heads"][:, valid]  # [L, M, H, hd]
    grams = []
    for k, block in enumerate(steps):
        if block not in out_proj:
            out_proj[block] = attention_matrices(subject, block)[3].float().cpu()  # [H, d, hd]
        written = torch.einsum("mhe,hde->hmd", heads[k], out_proj[block]).flatten(1).double()  # [H, M*d]
        grams.append(written @ written.T)
    totals.gram = torch.stack(grams)
    activations = output.captures["neurons"][:, valid]  # [L, M, N] real tokens, float32
    totals.neuron_max = activations.abs().amax(dim=1)
    # float64 sums without a float64 copy of every activation (a 7B model: ~1 GB per batch)
    totals.neuron_sum = activations.sum(dim=1, dtype=torch.float64)
    totals.neuron_square_sum = activations.square().sum(dim=1, dtype=torch.float64)
    states = torch.cat([inputs.embeddings[None].float().cpu(), resid])
    influence, _ = proxy_metrics(states, valid)
    totals.influence_sum = influence * float(valid.sum())
    totals.token_count = float(valid.sum())
    # the logit lens at the last few positions (real tokens under left padding)
    width = ids.shape[1]
    positions = torch.arange(max(0, width - LENS_POSITIONS), width)
    read = valid[:, positions]
    lensed = resid[:, :, positions].flatten(0, 1).to(device=subject.device, dtype=subject.dtype)  # one matmul
    tops = unembed(subject, lensed, "all").argmax(-1).cpu().view(len(steps), *read.shape)  # [L, B, P]
    totals.lens_hits = ((tops == tops[-1:]) & read[None]).sum(dim=(1, 2)).double()
    totals.lens_count = float(read.sum())
    return totals


def _collect_massive(subject, totals, magnitude, resid, valid, first, median, ids) -> None:
    """Count, sum and locate every cell over the massive thresholds, per (step, dim)."""
    threshold = torch.tensor(np.maximum(MASSIVE_ABSOLUTE, MASSIVE_RATIO * median), dtype=magnitude.dtype)
    hits = (magnitude > threshold[:, None, None, None]) & valid[None, :, :, None]
    for step, row, position, dim in hits.nonzero().tolist():
        entry = totals.massive.setdefault((step, dim), {"count": 0, "sum": 0.0, "max": 0.0, "threshold": 0.0,
                                                        "positions": {}, "pieces": {}})
        value = float(resid[step, row, position, dim])
        entry["count"] += 1
        entry["sum"] += value
        entry["max"] = max(entry["max"], abs(value))
        entry["threshold"] = max(entry["threshold"], float(threshold[step]))
        relative = position - int(first[row])
        entry["positions"][relative] = entry["positions"].get(relative, 0) + 1
        piece = subject.token_pieces([int(ids[row, position])])[0]
        entry["pieces"][piece] = entry["pieces"].get(piece, 0) + 1


def _importance_pass(subject: Subject, batch) -> np.ndarray:
    """``sum over texts |dL_x / d gate_h|`` per block and head, with ``L_x`` the text's mean
    next-token cross-entropy and a gate of 1 on each head's output per text (Michel et al. 2019):
    one gate per row, so one backward pass gives every text's own gradient."""
    ids, mask = batch
    n_heads = subject.n_heads
    gates = torch.ones(ids.shape[0], subject.n_layers, n_heads, device=subject.device, dtype=subject.dtype,
                       requires_grad=True)

    def gate_hook(block: int):
        def hook(module, args):
            joined = args[0]
            gate = gates[:, block, None, :, None].to(joined.device)  # differentiable; the block's device
            split = joined.view(*joined.shape[:-1], n_heads, -1) * gate
            return (split.reshape(joined.shape), *args[1:])

        return hook

    handles = register([Hook(subject.adapter.output_projection(block), "pre", gate_hook(k))
                        for k, block in enumerate(subject.blocks)])
    try:
        with torch.enable_grad():
            logits = subject.model(input_ids=ids, attention_mask=mask,
                                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=False).logits
            targets = ids[:, 1:]
            scored = mask[:, 1:].bool() & mask[:, :-1].bool()
            wide = torch.promote_types(logits.dtype, torch.float32)  # half models score in fp32
            losses = torch.nn.functional.cross_entropy(logits[:, :-1].to(wide).flatten(0, 1), targets.flatten(),
                                                       reduction="none").view(targets.shape)
            per_text = (losses * scored).sum(-1) / scored.sum(-1).clamp_min(1)
            (gradient,) = torch.autograd.grad(per_text.sum(), gates)
    finally:
        for handle in handles:
            handle.remove()
    return gradient.abs().double().sum(0).cpu().numpy()  # summed in float64: a bf16 sum over texts rounds


@torch.no_grad()
def _spectra(subject: Subject, bar: ProgressBar) -> tuple[np.ndarray, list[str]]:
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


# -- reading findings off the arrays --------------------------------------------------------------


def _findings(arrays: dict[str, np.ndarray], names: list[str], steps: list[int], massive: dict) -> list[Finding]:
    """Findings by severity (high, medium, info), each read off one array."""
    findings = _massive_findings(steps, massive)
    sink, entropy, importance = arrays["sink_mass"], arrays["entropy"], arrays["importance"]
    sinks = sorted(zip(*np.nonzero(sink > SINK_MASS)), key=lambda pair: -sink[pair])
    if sinks:
        step, head = sinks[0]
        strongest = ", ".join(f"{a}.{b} {sink[a, b]:.0%}" for a, b in sinks[:4])
        findings.append(Finding(
            "medium", "attention_sink",
            f"Attention sink: {len(sinks)} of {sink.size} heads put over {SINK_MASS:.0%} on the first token",
            f"Strongest: {strongest} (head {step}.{head}'s entropy {entropy[step, head]:.2f} nats); trained models park "
            "attention they do not need on the first token (Xiao et al. 2023), usually where a massive activation sits.",
            "sink_mass", layer=int(step), head=int(head), token=0, value=float(sink[step, head]),
            action={"kind": "ablate_heads", "heads": [[steps[step], int(head)]]}))
    median_importance = float(np.median(importance))
    for step, head in zip(*np.nonzero(importance <= DEAD_HEAD_FRACTION * median_importance)):
        findings.append(Finding(
            "medium", "dead_head", f"Dead head {step}.{head}: the loss does not depend on it",
            f"|dL/d gate| of head {head} in layer {step} is {importance[step, head]:.2g}, under "
            f"{DEAD_HEAD_FRACTION:g}x the median head's {median_importance:.2g} (Michel et al. 2019).",
            "importance", layer=int(step), head=int(head), value=float(importance[step, head]),
            action={"kind": "ablate_heads", "heads": [[steps[step], int(head)]]}))
    cosine = arrays["head_cosine"]
    for step in range(cosine.shape[0]):
        for a, b in zip(*np.nonzero(np.triu(cosine[step], k=1) > REDUNDANT_COSINE)):
            findings.append(Finding(
                "medium", "redundant_heads", f"Redundant heads {step}.{a} and {step}.{b}: cosine {cosine[step, a, b]:.3f}",
                f"What heads {a} and {b} of layer {step} write into the residual stream points the same way over the "
                f"corpus (cosine > {REDUNDANT_COSINE:g}): one may be enough.",
                "head_cosine", layer=int(step), head=int(b), value=float(cosine[step, a, b]),
                action={"kind": "ablate_heads", "heads": [[steps[step], int(b)]]}))
    neuron_max = arrays["neuron_max"]
    for step in range(neuron_max.shape[0]):
        typical = float(np.median(neuron_max[step]))
        dead = np.nonzero(neuron_max[step] <= DEAD_NEURON_FRACTION * typical)[0]
        if dead.size:
            share = dead.size / neuron_max.shape[1]
            listed = ",".join(map(str, dead[:8])) + ("..." if dead.size > 8 else "")
            findings.append(Finding(
                "high" if share > 0.1 else "medium", "dead_neurons",
                f"{dead.size} dead MLP neuron{'s' if dead.size > 1 else ''} in layer {step} ({listed})",
                f"max |activation| over the corpus is under {DEAD_NEURON_FRACTION:g}x the layer's median neuron's "
                f"({typical:.3g}): {share:.1%} of layer {step}'s neurons never fire.",
                "neuron_max", layer=int(step), dim=int(dead[0]), value=float(neuron_max[step, dead[0]]),
                action={"kind": "ablate_neurons", "neurons": [[steps[step], int(d)] for d in dead]}))
    findings += _saturated_neurons(arrays, steps)
    findings += _info_findings(arrays, names)
    order = {s: k for k, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])


def _saturated_neurons(arrays: dict[str, np.ndarray], steps: list[int]) -> list[Finding]:
    """Per layer, the neurons stuck at one strong value on every token."""
    findings = []
    mean, spread = np.abs(arrays["neuron_mean"]), arrays["neuron_std"]
    for step in range(mean.shape[0]):
        typical = float(np.median(np.sqrt(mean[step] ** 2 + spread[step] ** 2)))  # median RMS
        stuck = np.nonzero((spread[step] < SATURATED_SPREAD * mean[step]) & (mean[step] >= typical)
                           & (mean[step] > 0))[0]
        if not stuck.size:
            continue
        listed = ",".join(map(str, stuck[:8])) + ("..." if stuck.size > 8 else "")
        first = int(stuck[0])
        findings.append(Finding(
            "medium", "saturated_neurons",
            f"{stuck.size} saturated MLP neuron{'s' if stuck.size > 1 else ''} in layer {step} ({listed})",
            f"Neuron {first} of layer {step} is {arrays['neuron_mean'][step, first]:.3g} on every token (spread "
            f"{spread[step, first]:.2g}, under {SATURATED_SPREAD:g}x its mean; the layer's typical neuron: RMS "
            f"{typical:.3g}): it tells the model nothing about the token, a bias in disguise.",
            "neuron_max", layer=int(step), dim=first, value=float(arrays["neuron_mean"][step, first]),
            action={"kind": "ablate_neurons", "neurons": [[steps[step], int(d)] for d in stuck]}))
    return findings


def _info_findings(arrays: dict[str, np.ndarray], names: list[str]) -> list[Finding]:
    """Residual growth, the least influential layer, where the lens settles, odd spectra."""
    findings = []
    norm, first = arrays["resid_norm"], arrays["first_norm"]
    findings.append(Finding(
        "info", "residual_growth", f"Residual norm grows {norm[-1] / max(norm[0], 1e-30):.1f}x over depth",
        f"Mean ||h|| (first token left out) goes from {norm[0]:.3g} after layer 0 to {norm[-1]:.3g} after the last; "
        f"the first token's peaks at {first.max():.3g}.", "resid_norm", value=float(norm[-1] / max(norm[0], 1e-30))))
    influence = arrays["block_influence"]
    low = int(np.argmin(influence))
    findings.append(Finding(
        "info", "block_influence", f"Layer {low} changes the stream least (Block Influence {influence[low]:.3f})",
        "Block Influence 1 - cos(x_in, x_out) averaged over tokens (Men et al. 2024): the lowest layers are the "
        "first candidates to drop.", "block_influence", layer=low, value=float(influence[low])))
    agreement = arrays["lens_agreement"]
    above = agreement >= LENS_AGREEMENT
    settled = next((k for k in range(len(above)) if above[k:].all()), len(above) - 1)
    findings.append(Finding(
        "info", "logit_lens", f"The logit lens settles at layer {settled} of {len(above)}",
        f"From layer {settled} on, the logit lens's top token agrees with the output's on at least "
        f"{LENS_AGREEMENT:.0%} of the last {LENS_POSITIONS} positions of each text.", "lens_agreement",
        layer=settled, value=float(agreement[settled])))
    alpha = arrays["alpha"]
    if alpha.size:
        outside = ~np.isnan(alpha) & ((alpha < ALPHA_RANGE[0]) | (alpha > ALPHA_RANGE[1]))
        for m, name in enumerate(names):
            blocks = np.nonzero(outside[:, m])[0]
            if blocks.size:
                findings.append(Finding(
                    "info", "weight_spectrum",
                    f"{name}: power-law alpha outside [{ALPHA_RANGE[0]:g}, {ALPHA_RANGE[1]:g}] in {blocks.size} layers",
                    f"alpha of the eigenvalues of W^T W (WeightWatcher's fit) is {np.nanmedian(alpha[blocks, m]):.2f} "
                    f"(median there); under 2 is over-fitted heavy-tailed, over 6 is little-trained or random.",
                    "alpha", layer=int(blocks[0]), value=float(alpha[blocks[0], m])))
    return findings


def _massive_findings(steps: list[int], massive: dict) -> list[Finding]:
    """One finding per massive dim: the layers it spans, its peak, the positions and tokens."""
    by_dim: dict[int, list[int]] = {}
    for step, dim in massive:
        by_dim.setdefault(dim, []).append(step)
    findings = []
    for dim, found_steps in sorted(by_dim.items(), key=lambda item: -max(massive[(s, item[0])]["max"] for s in item[1])):
        found_steps.sort()
        peak_step = max(found_steps, key=lambda s: massive[(s, dim)]["max"])
        peak = massive[(peak_step, dim)]
        positions = sorted(peak["positions"].items(), key=lambda item: -item[1])
        pieces = sorted(peak["pieces"].items(), key=lambda item: -item[1])[:3]
        position = positions[0][0]
        blocks = [{"block": steps[s], "dims": [dim], "threshold": massive[(s, dim)]["threshold"],
                   "means": [massive[(s, dim)]["sum"] / massive[(s, dim)]["count"]]} for s in found_steps]
        # a block run twice keeps one entry (the hook acts at both occurrences)
        unique = {entry["block"]: entry for entry in blocks}
        span = f"{found_steps[0]}-{found_steps[-1]}" if len(found_steps) > 1 else str(found_steps[0])
        findings.append(Finding(
            "medium", "massive_activation",
            f"Massive activation: dim {dim}, layers {span}, |h| up to {peak['max']:.0f}",
            f"Residual dim {dim} reaches {peak['max']:.0f} at layer {peak_step} (position {position}, tokens "
            f"{', '.join(repr(p) for p, _ in pieces)}), over {MASSIVE_ABSOLUTE:g} and {MASSIVE_RATIO:g}x the layer's "
            "median |h| (Sun et al. 2024): a fixed bias the model computes, often paired with an attention sink.",
            "resid_max", layer=int(peak_step), token=int(position), dim=int(dim), value=float(peak["max"]),
            action={"kind": "massive", "mode": "mean", "blocks": list(unique.values())}))
    return findings
