"""The corpus passes: per batch, one no-grad pass under eager attention for the statistics and
one gradient pass for head importance, reduced batch by batch and merged in batch order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...core.distributed import ShardedWork, run_units
from ...core.interventions import Hook, register
from ...core.progress import ProgressBar
from ...core.proxies import proxy_metrics
from ...core.runner import Capture, prepare, run, unembed
from ...core.subject import Subject
from ...core.matrices import attention_matrices
from .config import LENS_POSITIONS, MASSIVE_ABSOLUTE, MASSIVE_RATIO

#: Tokens per float32 product of the heads' outputs (each chunk's pair sums accumulated in float64).
GRAM_CHUNK = 1024


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



class _BatchPasses:
    """The statistics and importance passes of one corpus batch, into a fresh ``_Totals``.
    The single process and every Ray worker compute a batch with this."""

    def __init__(self, subject: Subject, batches: list[list[list[int]]]) -> None:
        self.subject, self.batches = subject, batches
        self.steps = list(subject.program.steps)
        self.output_grams: dict[int, torch.Tensor] = {}  # each block's W_O^T W_O, float64

    def __call__(self, index: int) -> _Totals:
        batch = self.subject.left_padded(self.batches[index])
        with self.subject.attention_implementation("eager"):
            part = _statistics_pass(self.subject, batch, self.steps, self.output_grams)
        part.block_importance = _importance_pass(self.subject, batch)
        return part


def corpus_passes(subject: Subject, batches: list[list[list[int]]], bar: ProgressBar, workers: int | None,
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


def finish(totals: _Totals) -> dict[str, np.ndarray]:
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


@torch.no_grad()
def _statistics_pass(subject: Subject, batch, steps: list[int], output_grams: dict) -> _Totals:
    """One batch's reductions under eager attention (``output_grams`` caches each block's
    ``W_O^T W_O``)."""
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
    # the heads' outputs as written into the stream (their slices of the output projection), paired
    heads = output.captures["heads"][:, valid]  # [L, M, H, hd]
    for block in set(steps) - set(output_grams):
        output_grams[block] = output_gram(attention_matrices(subject, block)[3])
    totals.gram = torch.stack([head_gram(heads[k], output_grams[block]) for k, block in enumerate(steps)])
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


def output_gram(out_proj: torch.Tensor) -> torch.Tensor:
    """``W_O^T W_O``, ``[H*hd, H*hd]`` float32 (formed in float64), from a block's per-head output
    projection ``[H, d, hd]``: the inner products of what any two heads' outputs write into the stream."""
    n_heads, d_model, head_dim = out_proj.shape
    joined = out_proj.detach().cpu().double().permute(1, 0, 2).reshape(d_model, n_heads * head_dim)
    return (joined.T @ joined).float()


def head_gram(heads: torch.Tensor, output_gram: torch.Tensor) -> torch.Tensor:
    """``sum over tokens <W_O,a h_a, W_O,b h_b>`` for every pair of heads, ``[H, H]`` float64, from
    the heads' outputs ``h`` (``[M tokens, H, hd]``, float32) without writing them into the stream:
    with ``x`` a token's joined head outputs, the pair's sum is the ``(a, b)`` block of
    ``(sum x x^T) * W_O^T W_O`` summed. Per chunk of tokens in float32, summed into the ``[H, H]``
    gram in float64: no activation is copied to float64 (before: the written vectors ``[H, M, d]``,
    H times the residual stream, were)."""
    tokens, n_heads, head_dim = heads.shape
    joined = heads.reshape(tokens, n_heads * head_dim)
    gram = torch.zeros(n_heads, n_heads, dtype=torch.float64)
    for chunk in joined.split(GRAM_CHUNK):
        paired = (chunk.T @ chunk).mul_(output_gram).view(n_heads, head_dim, n_heads, head_dim)
        gram += paired.sum(dim=(1, 3), dtype=torch.float64)
    return gram


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
