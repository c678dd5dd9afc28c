"""Brain-scan speed: the batched residual-stream sweep against the naive way, same run.

    python bench/brainscan.py [--probe math] [--limit N] [--device cpu|cuda] [--dtype float32|bfloat16]
                              [--threads N]

Naive: for every config (i, j), apply the program to the model the ordinary way and call
the HF forward on the probe batch (full logits), then score the answer tokens.
Batched: ``nm.brainscan`` (shared prefixes, suffixes batched across ends j, logits only
at the answer positions). Both score the same items and must agree to 1e-4 (fp32).
Also printed: the sweep's achieved FLOP/s against a measured matmul peak on the device.
The last line reads ``speedup: N.NNx``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses.probe_sets import answer_logprobs, load_probe, teacher_forced_batch  # noqa: E402
from neuro_magics.core.runner import position_ids_for  # noqa: E402


@torch.no_grad()
def naive_sweep(subject: nm.Subject, batch) -> np.ndarray:
    """Item scores [(L+1), (L+1), N] the ordinary way: one full HF forward per config."""
    n_layers = subject.n_layers
    scores = np.full((n_layers + 1, n_layers + 1, batch.n_items), np.nan)
    position_ids = position_ids_for(batch.attention_mask)
    for i in range(n_layers):
        for j in range(i + 1, n_layers + 1):
            with subject.program_applied(nm.LayerProgram.duplicate(n_layers, i, j)):
                logits = subject.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                       position_ids=position_ids, use_cache=False).logits
            picked = logits.gather(1, batch.positions[..., None].expand(-1, -1, logits.shape[-1]))
            scores[i, j] = answer_logprobs(picked, batch.targets, batch.valid).double().cpu().numpy()
    return scores


def sweep_flops(subject: nm.Subject, batch) -> float:
    """Matmul FLOPs of the batched sweep: block linears and attention on every token of
    every row run, plus the unembedding at the scored positions."""
    n_layers, rows, tokens = subject.n_layers, batch.n_items, batch.n_tokens
    block = subject.blocks[0]
    linear = sum(m.weight.numel() for m in block.modules() if isinstance(m, torch.nn.Linear))
    config = subject.model.config
    attention_width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    per_token = 2 * linear + 4 * tokens * attention_width
    block_runs = n_layers + sum((n_layers - i) for i in range(n_layers) for _ in range(i + 1, n_layers + 1))
    unembeddings = (1 + n_layers * (n_layers + 1) // 2) * int(batch.valid.shape[1]) * rows
    return block_runs * rows * tokens * per_token + unembeddings * 2 * subject.d_model * subject.vocab_size


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Best FLOP/s of a large square matmul on the device, as the practical peak."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        started = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", default="math")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    subject = nm.load_model(device=args.device, dtype=dtype)
    device = subject.device
    probe = load_probe(args.probe, limit=args.limit)
    batch = teacher_forced_batch(subject, probe)
    n_configs = subject.n_layers * (subject.n_layers + 1) // 2
    print(f"model: {subject.name}, {subject.n_layers} layers, {device}, {dtype}, {torch.get_num_threads()} CPU threads")
    print(f"probe: {probe.name}, {batch.n_items} items x {batch.n_tokens} tokens, {int(batch.valid.sum())} scored tokens; "
          f"{n_configs} configs")

    nm.brainscan(subject, probe=args.probe, limit=1, layers=f"{subject.n_layers - 2}:{subject.n_layers}",
                 progress=False)  # warm-up: kernels, allocator
    _sync(device)
    started, started_cpu = time.perf_counter(), time.process_time()
    result = nm.brainscan(subject, probe=args.probe, limit=args.limit, progress=False)
    _sync(device)
    batched_s, batched_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    print(f"batched sweep: {batched_s:.1f} s wall, {batched_cpu:.1f} s CPU ({batched_s / n_configs * 1e3:.0f} ms per config)")

    started, started_cpu = time.perf_counter(), time.process_time()
    naive = naive_sweep(subject, batch)
    _sync(device)
    naive_s, naive_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    print(f"naive sweep:   {naive_s:.1f} s wall, {naive_cpu:.1f} s CPU ({naive_s / n_configs * 1e3:.0f} ms per config)")

    upper = np.triu(np.ones(result.scores.shape, dtype=bool), k=1)
    difference = float(np.abs(result.item_scores[upper] - naive[upper]).max())
    tolerance = 1e-4 if dtype == "float32" else 5e-2
    print(f"max |batched - naive| item score: {difference:.2e} (tolerance {tolerance:g})")
    if not difference <= tolerance:
        raise SystemExit(f"batched and naive sweeps disagree by {difference:.2e}")
    flops = sweep_flops(subject, batch)
    peak = matmul_peak(device, subject.dtype)
    achieved = flops / batched_s
    print(f"batched sweep: {flops / 1e12:.2f} TFLOP, {achieved / 1e9:.1f} GFLOP/s = "
          f"{100 * achieved / peak:.1f}% of the measured {peak / 1e9:.0f} GFLOP/s matmul peak")
    best = result.best(1)[0]
    print(f"best config: duplicate {best.i}:{best.j} (Δ {best.delta:+.4f} on baseline {result.baseline:.4f})")
    # CPU time is the fairer ratio on a shared machine; the last line is wall-clock, as users feel it.
    print(f"speedup in CPU time: {naive_cpu / batched_cpu:.2f}x")
    print(f"speedup: {naive_s / batched_s:.2f}x")


if __name__ == "__main__":
    main()
