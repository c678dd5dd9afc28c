"""What the networks' per-neuron moments cost: the energy (mean square) and the standardisation of
the tokens x (layers * d_model) float32 matrix of MLP outputs, at the default model's width
(30 x 576 = 17,280 neurons) on ``--tokens`` rows of synthetic activations (shifted and scaled per
column, as MLP outputs are).

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up, and the
peak of memory allocated beyond the matrix (``tracemalloc``, which numpy reports to):

- ours now (``networks._column_square_mean`` and ``networks._standardize``, in place);
- the same two steps as committed at ``--before`` (``np.std(dtype=float64)``: a float64 copy);
- scikit-learn's ``StandardScaler(copy=False)`` plus the same float64 ``einsum`` energy.

    python bench/networks_moments.py [--tokens 4000] [--repeats 3] [--before main]
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from _revision import best_cpu_times

from neuro_magics.analyses import networks


def before(matrix: np.ndarray) -> np.ndarray:
    """The two steps as ``main`` wrote them inline in ``networks.networks``."""
    energy = np.einsum("td,td->d", matrix, matrix, dtype=np.float64) / len(matrix)
    matrix -= matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    spread = matrix.std(axis=0, dtype=np.float64).astype(np.float32)
    matrix /= np.where(spread > 0, spread, 1.0).astype(np.float32)
    return energy


def ours(matrix: np.ndarray) -> np.ndarray:
    energy = networks._column_square_mean(matrix)
    networks._standardize(matrix)
    return energy


def scikit_learn(matrix: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    energy = np.einsum("td,td->d", matrix, matrix, dtype=np.float64) / len(matrix)
    StandardScaler(copy=False).fit_transform(matrix)
    return energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    generator = np.random.default_rng(0)
    source = (generator.normal(size=(args.tokens, 17280)) * generator.uniform(0.01, 3, 17280)
              + generator.normal(size=17280)).astype(np.float32)
    work = source.copy()
    results = {}
    cases = [("ours (einsum moments, in place)", ours), ("main (np.std float64)", before),
             ("scikit-learn StandardScaler", scikit_learn)]
    for name, step in cases:
        work[...] = source
        tracemalloc.start()
        energy = step(work)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[name] = (energy, work.copy())
        print(f"  {name:<34} peak beyond the matrix {peak / 2**20:8.1f} MiB (matrix {source.nbytes / 2**20:.0f} MiB)")
    reference = results[cases[1][0]]
    for name, (energy, matrix) in results.items():
        print(f"  {name:<34} max |energy - main| {np.abs(energy - reference[0]).max():.1e}, "
              f"max |standardised - main| {np.abs(matrix - reference[1]).max():.1e}")

    def timed(step):
        def run():
            work[...] = source
            step(work)
        return run

    copy_only = best_cpu_times([("copy", timed(lambda m: None))], args.repeats)[0]
    best = [t - copy_only for t in best_cpu_times([(n, timed(s)) for n, s in cases], args.repeats)]
    print(f"{args.tokens} tokens x 17280 neurons; best CPU s of {args.repeats} (the refill copy taken off):")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<34} {seconds:7.3f} s")
    print(f"speedup vs main: {best[1] / best[0]:.2f}x")
    print(f"speedup vs strongest: {min(best[1:]) / best[0]:.2f}x")


if __name__ == "__main__":
    main()
