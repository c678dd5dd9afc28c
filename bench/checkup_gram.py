"""What the checkup's head gram costs per batch: the inner products, over tokens, of what every
two heads of a step write into the residual stream (the redundant-heads finding's cosine).

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up, on
random float32 head outputs of the checkup's default batch (8 texts x 48 tokens) and each
step's output projection (cached per block in both):

- ``ours``: ``head_gram``: per chunk of tokens, the heads' second moment ``sum x x^T`` times
  ``W_O^T W_O`` in float32, summed per pair of heads into the ``[H, H]`` gram in float64;
- ``float64 written`` (the code before): every head's written vector ``[H, M*d]`` by einsum,
  copied to float64, and its gram;
- ``float32 written``: the same in float32 throughout, its gram copied to float64 (the strongest
  plain alternative: no float64 copy, but still H times the residual stream per step).

Shapes: SmolLM2-135M (30 steps, 9 heads of 64, d 576) and one step of a 7B Llama (32 heads of
128, d 4096). The last line is the speed-up against the faster alternative on SmolLM2.

    python bench/checkup_gram.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from neuro_magics.analyses.checkup.passes import head_gram, output_gram


def written_gram(heads: torch.Tensor, out_proj: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    written = torch.einsum("mhe,hde->hmd", heads, out_proj).flatten(1).to(dtype)
    return (written @ written.T).double()


def seconds(function, repeats: int) -> float:
    function()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    ratios = {}
    for label, steps, n_heads, head_dim, tokens in (("SmolLM2-135M", 30, 9, 64, 384), ("7B, one step", 1, 32, 128, 384)):
        d_model = n_heads * head_dim
        heads = torch.randn(steps, tokens, n_heads, head_dim, generator=generator)
        out_proj = torch.randn(n_heads, d_model, head_dim, generator=generator) / d_model**0.5
        gram = output_gram(out_proj)
        results = {
            "ours": lambda: [head_gram(heads[k], gram) for k in range(steps)],
            "float64 written": lambda: [written_gram(heads[k], out_proj, torch.float64) for k in range(steps)],
            "float32 written": lambda: [written_gram(heads[k], out_proj, torch.float32) for k in range(steps)],
        }
        ours = torch.stack(results["ours"]())
        before = torch.stack(results["float64 written"]())
        error = float(((ours - before).abs() / before.abs().amax()).max())
        timed = {name: seconds(function, args.repeats) for name, function in results.items()}
        strongest = min(("float64 written", "float32 written"), key=timed.get)
        ratios[label] = timed[strongest] / timed["ours"]
        print(f"{label}: {steps} steps x {tokens} tokens, {n_heads} heads of {head_dim}: "
              + ", ".join(f"{name} {value * 1e3:.1f} ms" for name, value in timed.items())
              + f"; ours / float64 written max relative difference {error:.1e}; vs {strongest} {ratios[label]:.2f}x")
    print(f"speedup vs strongest: {ratios['SmolLM2-135M']:.2f}x")


if __name__ == "__main__":
    main()
