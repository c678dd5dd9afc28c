"""Functional-networks speed: the default ``%%networks`` run on the default model.

    python bench/networks.py [--threads N] [--max-tokens N] [--components K] [--baseline]

Times (wall and CPU, ``time.process_time``) the whole default run, ``nm.networks(subject)``
(built-in corpus, 10 components, every layer), then its two parts separately: the capture
of every layer's MLP output (the residual-stream runner, texts batched by length) and the
decomposition (randomized PCA to k dimensions, then scikit-learn's FastICA).

``--baseline`` also runs the paper's decomposition, scikit-learn's ``FastICA`` on the whole
tokens x (L * d) matrix (its own SVD whitening), on the same matrix, and prints its time and
how well its networks match ours (best IoU per network of the masks at z > 3.6). The last
line reads ``default run: N.N s wall``.
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
from neuro_magics.analyses import networks as engine  # noqa: E402
from neuro_magics.core.corpus import load_corpus  # noqa: E402


class Clock:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        print(f"{self.name:<34} {self.wall:8.1f} s wall {self.cpu:8.1f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--components", type=int, default=engine.DEFAULT_COMPONENTS)
    parser.add_argument("--baseline", action="store_true", help="Also time sklearn FastICA on the whole matrix.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    print(f"{subject.name}: {subject.n_layers} layers x d_model {subject.d_model}, {args.threads} threads")

    with Clock("default run (nm.networks)") as total:
        result = nm.networks(subject, max_tokens=args.max_tokens, components=args.components, progress=False)
    print(f"  {result!r}")

    layers = list(range(subject.n_layers))
    _, signals = engine._select(subject, load_corpus(None), args.max_tokens, skip_first=True)
    with Clock("  capture (runner, batched)"):
        matrix, _ = engine._capture(subject, signals, layers, progress=False)
    matrix -= matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    matrix /= np.maximum(matrix.std(axis=0, dtype=np.float64), 1e-12).astype(np.float32)
    print(f"  matrix: {matrix.shape[0]} tokens x {matrix.shape[1]} features ({matrix.nbytes / 2**30:.2f} GiB)")
    with Clock("  decomposition (PCA + FastICA)"):
        maps, _, facts = engine.decompose(matrix, args.components, random_state=0)
    print(f"  {facts}")

    if args.baseline:
        from sklearn.decomposition import FastICA

        with Clock("  baseline: FastICA on the matrix"):
            ica = FastICA(args.components, whiten="unit-variance", random_state=0, max_iter=1000)
            ica.fit(matrix)
        theirs = engine._zscore(ica.mixing_.T)
        theirs *= np.where((theirs ** 3).mean(axis=1, keepdims=True) < 0, -1, 1)
        overlap = engine.iou(maps > engine.DEFAULT_THRESHOLD, theirs > engine.DEFAULT_THRESHOLD)
        print(f"  best IoU of each of our networks with the baseline's: {np.round(overlap.max(axis=1), 2).tolist()}")
    print(f"default run: {total.wall:.1f} s wall ({total.cpu:.1f} s CPU)")


if __name__ == "__main__":
    main()
