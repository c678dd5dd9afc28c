"""Ray scaling of every sharded analysis: one process, then 1 and N Ray workers, same work.

    python bench/workers.py [--workers N] [--only patch,networks,project,checkup] [--scale K]

On the default model (CPU, float32), each analysis runs in this process, then with
``workers=1`` and ``workers=N`` on a local Ray cluster of this machine's cores; the
driver runs one torch thread so that each worker does too (the single-process numbers are
then reproduced bit for bit; see ``core/distributed.py`` for MKL's caveat). Times are wall
time, since the work runs in other processes; each sharded call's start-up (shipping the
model, starting the workers, rebuilding the model there) is timed up to the moment its
workers are ready, and the scaling is printed with it and after it. ``--scale`` multiplies
the work (corpus size, sweep positions) so that start-up weighs less.

The brain scan has its own: ``bench/brainscan.py --workers N``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from brainscan import ready_time_kept  # noqa: E402
from neuro_magics.core.corpus import builtin_corpus  # noqa: E402


def analyses(scale: int) -> dict:
    """name -> (call(subject, workers), the arrays that must agree)."""
    corpus = list(builtin_corpus().texts)
    clean = "When Mary and John went to the store, John gave a drink to" * scale
    corrupt = "When Mary and John went to the store, Mary gave a drink to" * scale
    return {
        "patch": (lambda s, w: nm.patch(s, clean, corrupt, (" Mary", " John"), progress=False, workers=w),
                  lambda r: [r.patched_metric, r.topk_probs]),
        "networks": (lambda s, w: nm.networks(s, corpus, max_tokens=2000 * scale, progress=False, workers=w),
                     lambda r: [r.maps, r.sources]),
        "project": (lambda s, w: nm.project(s, corpus[:100 * scale], unit="text", progress=False, workers=w),
                    lambda r: [r.coords]),
        "checkup": (lambda s, w: nm.checkup(s, max_texts=24 * scale, spectra=False, workers=w),
                    lambda r: [r.resid_norm, r.neuron_mean, r.importance]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated analyses (default: all)")
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from neuro_magics.core.distributed import connect

    subject = nm.load_model(device="cpu", dtype="float32")
    ray = connect()
    print(f"{subject.name}; Ray cluster: {ray.cluster_resources().get('CPU', 0):g} CPUs; driver 1 thread")
    chosen = analyses(args.scale)
    for name in args.only.split(",") if args.only else chosen:
        call, arrays = chosen[name]
        started = time.perf_counter()
        here = call(subject, None)
        alone = time.perf_counter() - started
        walls, starts = {}, {}
        for workers in sorted({1, args.workers}):
            started = time.perf_counter()
            with ready_time_kept(lambda: starts.setdefault(workers, time.perf_counter() - started)):
                result = call(subject, workers)
            walls[workers] = time.perf_counter() - started
            difference = max(float(np.nanmax(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))
                             for a, b in zip(arrays(result), arrays(here)))
            print(f"{name:9s} {workers} worker(s): {walls[workers]:7.1f} s wall ({starts[workers]:.1f} s start-up); "
                  f"max |difference| to one process {difference:.1e}")
        after = (walls[1] - starts[1]) / (walls[args.workers] - starts[args.workers])
        print(f"{name:9s} one process: {alone:7.1f} s wall; scaling 1 -> {args.workers} workers: "
              f"{walls[1] / walls[args.workers]:.2f}x, after start-up {after:.2f}x")


if __name__ == "__main__":
    main()
