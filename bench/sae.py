"""SAE training speed: ``nm.train_sae`` on the default model, one program step, 4x, default steps.

    python bench/sae.py [--threads N] [--step N] [--steps N]

Times (wall and CPU, ``time.process_time``) the whole call: capturing the step's
activations over the built-in corpus, the Adam steps, and the held-out evaluation (codes
and the spliced-in loss). Prints the SAE's report; the last line reads
``train_sae: N.N s wall``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--step", type=int, default=12)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model()
    wall, cpu = time.perf_counter(), time.process_time()
    sae = nm.train_sae(subject, step=args.step, expansion=4, steps=args.steps, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(repr(sae))
    print(f"{args.threads} thread(s), step {args.step}, {sae.width} features, {args.steps} steps; "
          f"training alone {sae.report['seconds']:.1f} s; {cpu:.1f} s CPU")
    print(f"train_sae: {wall:.1f} s wall")


if __name__ == "__main__":
    main()
