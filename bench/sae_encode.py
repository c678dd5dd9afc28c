"""SAE encode/decode per call: the coder kept on the SAE against one rebuilt on every call.

    python bench/sae_encode.py [--threads N] [--rows 1 64] [--calls 300] [--repeats 5] [--device cpu]

An SAE the size of the default model's (d_model 576, 4x = 2304 features, TopK k=32), random
weights (the cost does not depend on them), encoded and decoded at ``--rows`` tokens per call:
one row is what a feature ablation's hook sees per generated token. Timed, each the best CPU
time (``time.process_time``; wall time on a CUDA device) of several interleaved repeats after a
warm-up, over ``--calls`` calls:

- ``rebuilt per call``: what ``sae.encode`` / ``sae.decode`` did before the coder was kept: a
  torch module built from the numpy weights (and copied to the device) on every call;
- ``plain torch``: the strongest way, weights already torch tensors on the device and the TopK
  written inline (what one writes by hand, as SAELens and sparsify hold their weights);
- ``sae.encode / decode``: ours, the coder built on the first call and kept on the SAE.

Checks first that all three give the same codes and reconstructions. The last line reads
``speedup vs strongest: N.NNx``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from neuro_magics.analyses.sae import SparseAutoencoder
from neuro_magics.analyses.sae.evaluation import NO_CODES

D_MODEL, WIDTH, K = 576, 2304, 32


def rebuilt_per_call(sae: SparseAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The code before the coder was kept (commit 10cd7c1), inline: buffers from numpy on every call."""
    weights = {name: torch.from_numpy(np.asarray(getattr(sae, name), dtype=np.float32)).to(x.device)
               for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    pre = (x * sae.scale - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]
    values, indices = torch.relu(pre).topk(sae.k, dim=-1)
    dense = torch.zeros_like(pre).scatter(-1, indices, values)
    decoder = torch.from_numpy(sae.W_dec).to(x.device)
    rebuilt = (dense @ decoder + torch.from_numpy(sae.b_dec).to(x.device)) / sae.scale
    return dense, rebuilt


def plain_torch(weights: dict[str, torch.Tensor], scale: float, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pre = (x * scale - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]
    values, indices = torch.relu(pre).topk(K, dim=-1)
    dense = torch.zeros_like(pre).scatter(-1, indices, values)
    return dense, (dense @ weights["W_dec"] + weights["b_dec"]) / scale


def ours(sae: SparseAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dense = sae.encode(x)
    return dense, sae.decode(dense)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    # the old path read the numpy weights in place; they are read-only now, which torch warns about once
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    decoder = rng.normal(size=(WIDTH, D_MODEL)).astype(np.float32)
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    arrays = {"W_enc": np.ascontiguousarray(decoder.T), "b_enc": rng.normal(scale=0.1, size=WIDTH).astype(np.float32),
              "W_dec": decoder, "b_dec": rng.normal(size=D_MODEL).astype(np.float32),
              "fvu_curve": np.zeros(0, np.float32), "since_fired": np.zeros(WIDTH, np.int64)}
    sae = SparseAutoencoder(arrays, site="resid_post", step=12, block=12, k=K, scale=0.7, report={}, codes=NO_CODES,
                            tokens=[], metadata={})
    resident = {name: torch.tensor(arrays[name]).to(device) for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    print(f"SAE {D_MODEL} -> {WIDTH} features, k={K}, on {device}, {args.threads} thread(s); best of {args.repeats} "
          f"x {args.calls} calls ({'wall' if device.type == 'cuda' else 'CPU'} time per call):")
    ratios = []
    for rows in args.rows:
        x = torch.tensor(rng.normal(size=(rows, D_MODEL)).astype(np.float32) * 3).to(device)
        ways = {"rebuilt per call": lambda: rebuilt_per_call(sae, x),
                "plain torch": lambda: plain_torch(resident, sae.scale, x),
                "sae.encode / decode": lambda: ours(sae, x)}
        reference = [part.cpu() for part in ways["plain torch"]()]
        for name, way in ways.items():
            for part, expected in zip(way(), reference):
                torch.testing.assert_close(part.cpu(), expected, rtol=1e-4, atol=1e-4, msg=name)
        best = dict.fromkeys(ways, float("inf"))
        with torch.no_grad():
            for _ in range(args.repeats):
                for name, way in ways.items():
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    started = clock()
                    for _ in range(args.calls):
                        way()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    best[name] = min(best[name], (clock() - started) / args.calls)
        print(f"  {rows:>4} row(s): " + "   ".join(f"{name} {seconds * 1e6:8.1f} us" for name, seconds in best.items()))
        print(f"        speedup vs rebuilt per call: {best['rebuilt per call'] / best['sae.encode / decode']:.2f}x")
        ratios.append(best["plain torch"] / best["sae.encode / decode"])
    print(f"speedup vs strongest: {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
