"""Brain-scan speed: the batched residual-stream sweep against per-config loops, same run.

    python bench/brainscan.py [--probe math] [--limit N] [--layers I0:J0] [--threads N]
                              [--naive-every K] [--strongest-every K] [--device cpu|cuda]
                              [--dtype float32|bfloat16]
    python bench/brainscan.py --workers N [--probe math] [--limit N] [--layers I0:J0] [--device cpu|cuda]

Three ways to score every duplication config (i, j) on the probe, all in this process:
- ``nm.brainscan``: shared prefixes, suffixes batched across ends j, items grouped by
  length (no padding), logits only at the answer positions.
- the strongest baseline, a per-config loop: apply the program the ordinary way, run the
  HF body on the whole (padded) probe batch, unembed only the answer positions and score
  them with logsumexp;
- the naive loop: the same, but the HF forward computes logits at every position.
All must agree to 2e-4 (fp32: the loops run the padded batch, the sweep unpadded length
groups, and rounding accumulates over 30 blocks; 16 math items differ by up to 1.04e-4). Times are CPU time (``time.process_time``), fair on a
shared machine. ``--naive-every K`` (``--strongest-every K``) times that loop on every K-th
config only, a uniform sample of the configs, when the machine is too busy for the whole
loop; its total is then extrapolated and marked so. The sweep always runs in full.

Also printed: each way's FLOPs per CPU-second as a share of a large fp32 matmul's at the
same thread count (the practical peak). The last line reads ``speedup vs strongest: N.NNx``.

``--workers N`` times something else: the same sweep sharded over 1 and then N Ray workers
(a local cluster on this machine; one GPU each for ``--device cuda``), in wall time since
the work runs in other processes, worker start-up included. Both must equal the
single-process sweep. The start-up (shipping the model, starting the workers, rebuilding it
there) is timed up to the moment the workers are ready, and the scaling printed with and
after it. The last line reads ``scaling 1 -> N workers: N.NNx``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses.brain_scan import parse_layer_range  # noqa: E402
from neuro_magics.core.probe_sets import load_probe, teacher_forced_batch  # noqa: E402
from neuro_magics.core.runner import position_ids_for  # noqa: E402


@torch.no_grad()
def answers_only_loop(subject: nm.Subject, batch, configs) -> dict[tuple[int, int], np.ndarray]:
    """Per config: the program applied the ordinary way, one HF body forward on the padded
    probe batch, the final-normed states at the answer positions unembedded, logsumexp."""
    body = subject.adapter.body_module(subject.model)
    position_ids = position_ids_for(batch.attention_mask)
    rows, slots = batch.valid.nonzero(as_tuple=True)
    positions, targets = batch.positions[rows, slots], batch.targets[rows, slots]
    counts = batch.valid.sum(-1).double()
    scores = {}
    for i, j in configs:
        with subject.program_applied(nm.LayerProgram.duplicate(subject.n_layers, i, j)):
            hidden = body(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                          position_ids=position_ids, use_cache=False).last_hidden_state
        logits = subject.adapter.unembed(subject.model, hidden[rows, positions]).float()
        token_scores = logits.gather(-1, targets[:, None])[:, 0] - torch.logsumexp(logits, -1)
        totals = torch.zeros(batch.n_items, dtype=torch.float64, device=logits.device)
        scores[i, j] = (totals.index_add_(0, rows, token_scores.double()) / counts).cpu().numpy()
    return scores


@torch.no_grad()
def naive_loop(subject: nm.Subject, batch, configs) -> dict[tuple[int, int], np.ndarray]:
    """Per config: the program applied, the full HF forward (logits at every position),
    then the answer tokens picked out and scored."""
    position_ids = position_ids_for(batch.attention_mask)
    valid = batch.valid.double()
    scores = {}
    for i, j in configs:
        with subject.program_applied(nm.LayerProgram.duplicate(subject.n_layers, i, j)):
            logits = subject.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                   position_ids=position_ids, use_cache=False).logits.float()
        picked = logits.gather(1, batch.positions[..., None].expand(-1, -1, logits.shape[-1]))
        chosen = picked.gather(-1, batch.targets[..., None])[..., 0] - torch.logsumexp(picked, -1)
        scores[i, j] = ((chosen.double() * valid).sum(-1) / valid.sum(-1)).cpu().numpy()
    return scores


def block_flops_per_token(subject: nm.Subject, context: int) -> float:
    """Matmul FLOPs of one decoder block per token: its linears, plus attention scores and
    mixing over ``context`` keys."""
    linear = sum(m.weight.numel() for m in subject.blocks[0].modules() if isinstance(m, torch.nn.Linear))
    config = subject.model.config
    width = config.num_attention_heads * (getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    return 2 * linear + 4 * context * width


def sweep_flops(subject: nm.Subject, batch, configs) -> float:
    """Matmul FLOPs the batched sweep runs: per group of equal-length items (no padding),
    the identity run and each config's suffix i..L-1; the unembedding at every answer token."""
    n_layers = subject.n_layers
    suffix_blocks = n_layers + sum(n_layers - i for i, _ in configs)
    unembedding = 2 * subject.d_model * subject.vocab_size * int(batch.valid.sum()) * (1 + len(configs))
    blocks = sum(
        suffix_blocks * part.n_items * part.n_tokens * block_flops_per_token(subject, part.n_tokens)
        for _, part in batch.by_length()
    )
    return blocks + unembedding


def loop_flops(subject: nm.Subject, batch, configs, all_logits: bool) -> float:
    """Matmul FLOPs of a per-config loop on the padded batch (the whole program every time)."""
    n_layers = subject.n_layers
    tokens = batch.n_items * batch.n_tokens
    blocks = sum(n_layers + j - i for i, j in configs) * tokens * block_flops_per_token(subject, batch.n_tokens)
    unembedded = tokens if all_logits else int(batch.valid.sum())
    return blocks + len(configs) * unembedded * 2 * subject.d_model * subject.vocab_size


def matmul_flops_per_cpu_second(device: torch.device, dtype: torch.dtype) -> float:
    """A large square matmul's FLOPs per CPU-second (best of 5) at the current thread count:
    the practical peak on CPU. On a GPU, FLOPs per wall-second."""
    size = 8192 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        best = min(best, _timed(device, lambda: a @ b)[1])
    return 2 * size**3 / best


def _timed(device: torch.device, work):
    """(result, seconds): CPU time on CPU, wall time on a GPU."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = clock()
    result = work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, clock() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", default="math")
    parser.add_argument("--limit", type=int, default=None, help="first N probe items")
    parser.add_argument("--layers", default=None, help="only configs I0 <= i < j <= J0 (quick runs)")
    parser.add_argument("--naive-every", type=int, default=1, help="time the naive loop on every K-th config")
    parser.add_argument("--strongest-every", type=int, default=1, help="time the strongest loop on every K-th config")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (torch.set_num_threads)")
    parser.add_argument("--workers", type=int, default=None, help="time 1 and N Ray workers instead")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    subject = nm.load_model(device=args.device, dtype=dtype)
    if args.workers:
        return worker_scaling(subject, args)
    device = subject.device
    probe = load_probe(args.probe, limit=args.limit)
    batch = teacher_forced_batch(subject, probe)
    low, high = parse_layer_range(args.layers, subject.n_layers) if args.layers else (0, subject.n_layers)
    configs = [(i, j) for i in range(low, high) for j in range(i + 1, high + 1)]
    clock = "wall (GPU)" if device.type == "cuda" else "CPU"
    print(f"model: {subject.name}, {subject.n_layers} layers, {device}, {dtype}, {torch.get_num_threads()} threads")
    print(f"probe: {probe.name}, {batch.n_items} items x {batch.n_tokens} tokens "
          f"({int(batch.attention_mask.sum())} real), {int(batch.valid.sum())} scored tokens; "
          f"{len(configs)} configs (layers {low}:{high})")

    nm.brainscan(subject, probe=args.probe, limit=1, layers=f"{subject.n_layers - 2}:{subject.n_layers}",
                 progress=False)  # warm-up: kernels, allocator
    result, batched_s = _timed(device, lambda: nm.brainscan(subject, probe=args.probe, limit=args.limit,
                                                           layers=f"{low}:{high}", progress=False))
    strongest_configs, naive_configs = configs[:: args.strongest_every], configs[:: args.naive_every]
    strongest, strongest_s = _timed(device, lambda: answers_only_loop(subject, batch, strongest_configs))
    naive, naive_s = _timed(device, lambda: naive_loop(subject, batch, naive_configs))
    strongest_total = strongest_s * len(configs) / len(strongest_configs)
    naive_total = naive_s * len(configs) / len(naive_configs)

    tolerance = 2e-4 if dtype == "float32" else 5e-2
    for label, reference in (("answers-only loop", strongest), ("naive loop", naive)):
        difference = max(float(np.abs(result.item_scores[i, j] - scores).max()) for (i, j), scores in reference.items())
        print(f"max |batched - {label}| item score: {difference:.2e} (tolerance {tolerance:g})")
        if not difference <= tolerance:
            raise SystemExit(f"the batched sweep and the {label} disagree by {difference:.2e}")

    peak = matmul_flops_per_cpu_second(device, subject.dtype)
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP per {clock} second ({2048 if device.type == 'cpu' else 8192}^2 fp matmul)")
    rows = [
        ("batched sweep (nm.brainscan)", batched_s, sweep_flops(subject, batch, configs), ""),
        ("answers-only loop (strongest)", strongest_total, loop_flops(subject, batch, configs, all_logits=False),
         _sample_note(strongest_configs, configs)),
        ("naive full-logits loop", naive_total, loop_flops(subject, batch, configs, all_logits=True),
         _sample_note(naive_configs, configs)),
    ]
    for label, seconds, flops, note in rows:
        print(f"{label:<31} {seconds:8.1f} s {clock}  {flops / 1e12:6.2f} TFLOP  "
              f"{flops / seconds / 1e9:6.1f} GFLOP/s = {100 * flops / seconds / peak:5.1f}% of the matmul peak  "
              f"{batched_s and seconds / batched_s:5.2f}x the sweep{note}")
    best = result.best(1)[0]
    print(f"best config: duplicate {best.i}:{best.j} (Δ {best.delta:+.4f} on baseline {result.baseline:.4f})")
    print(f"speedup vs naive: {naive_total / batched_s:.2f}x")
    print(f"speedup vs strongest: {strongest_total / batched_s:.2f}x")


def worker_scaling(subject: nm.Subject, args) -> None:
    """Wall time of the sweep on 1 and on ``args.workers`` Ray workers, and their ratio."""
    from neuro_magics.core.distributed import connect

    options = dict(probe=args.probe, limit=args.limit, layers=args.layers, progress=False)
    ray = connect()
    print(f"model: {subject.name}, {subject.n_layers} layers, {subject.device}, {subject.dtype}; "
          f"Ray cluster: {ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} GPUs; "
          f"driver {torch.get_num_threads()} threads")
    started = time.perf_counter()
    here = nm.brainscan(subject, **options)
    print(f"in this process: {time.perf_counter() - started:8.1f} s wall ({here.n_configs} configs)")
    walls, starts = {}, {}
    for workers in sorted({1, args.workers}):
        started = time.perf_counter()
        with ready_time_kept(lambda: starts.setdefault(workers, time.perf_counter() - started)):
            result = nm.brainscan(subject, workers=workers, **options)
        walls[workers] = time.perf_counter() - started
        difference = float(np.nanmax(np.abs(result.item_scores - here.item_scores)))
        print(f"{workers:3d} worker(s):     {walls[workers]:8.1f} s wall, of which {starts[workers]:.1f} s start the "
              f"workers; max |difference| to this process {difference:.1e}"
              f"{' (bit-identical)' if difference == 0 else ''}")
    print(f"scaling 1 -> {args.workers} workers after their start-up: "
          f"{(walls[1] - starts[1]) / (walls[args.workers] - starts[args.workers]):.2f}x")
    print(f"scaling 1 -> {args.workers} workers: {walls[1] / walls[args.workers]:.2f}x")


@contextlib.contextmanager
def ready_time_kept(on_ready):
    """Within the block, sharded calls report when their workers have rebuilt the model."""
    import neuro_magics.core.distributed as distributed

    run_sharded = distributed.run_sharded
    distributed.run_sharded = functools.partial(run_sharded, on_ready=on_ready)
    try:
        yield
    finally:
        distributed.run_sharded = run_sharded


def _sample_note(sampled: list, configs: list) -> str:
    return "" if len(sampled) == len(configs) else f"  (extrapolated from {len(sampled)} of {len(configs)} configs)"


if __name__ == "__main__":
    main()
