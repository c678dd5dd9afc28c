"""What calibration costs: Wanda's input norms of every block matrix of the default model over
the built-in calibration text (15 passages of 25-342 tokens), batched now against one passage
per forward (``--before``, default ``main``, loaded from git beside it) and a hand-written HF
loop that batches the same way (left padding, attention mask, positions; hooks summing the
squares of the real tokens). Best CPU time (``time.process_time``) of interleaved repeats after
a warm-up; the norms of the three agree to float rounding.

    python bench/calibration.py [--repeats 1] [--threads 1] [--before main]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from _revision import best_cpu_times, module_at  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses import pruning  # noqa: E402
from neuro_magics.core.runner import position_ids_for  # noqa: E402


@torch.no_grad()
def hand_loop(subject: nm.Subject, passages: list[str], batch: int = 8) -> dict[str, torch.Tensor]:
    modules = subject.block_matrices()
    squares, handles, real = {}, [], []
    for name, module in modules.items():
        def add(module, args, name=name):
            x = args[0][real[0]].float()
            squares[name] = squares.get(name, 0) + (x * x).sum(0)
        handles.append(module.register_forward_pre_hook(add))
    rows = sorted((subject.tokenizer(p)["input_ids"] for p in passages), key=len)
    try:
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            width = max(map(len, chunk))
            ids = torch.tensor([[subject.pad_token_id] * (width - len(r)) + r for r in chunk])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk])
            real[:] = [mask.bool()]
            subject.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return {name: value.sqrt() for name, value in squares.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="main")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    passages = pruning.calibration_passages()
    before = module_at(args.before, "neuro_magics/analyses/pruning.py")
    modules = subject.block_matrices()
    kept = {}
    cases = [("input_norms, batched (now)", lambda: kept.__setitem__("now", pruning.input_norms(subject, modules, passages))),
             (f"input_norms at {args.before}, one passage a forward",
              lambda: kept.__setitem__("then", before.input_norms(subject, modules, passages))),
             ("hand-batched HF loop", lambda: kept.__setitem__("hand", hand_loop(subject, passages)))]
    best = best_cpu_times(cases, args.repeats)
    worst = max(float(((kept["now"][n] - kept["then"][n]).abs() / kept["then"][n].clamp_min(1e-6)).max()) for n in modules)
    print(f"  largest relative difference of a norm, now vs {args.before}: {worst:.1e}")
    print(f"{subject.name}, {len(passages)} passages, {args.threads} thread(s); best CPU s of {args.repeats}:")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<44} {seconds:7.2f} s")
    print(f"speedup vs {args.before}: {best[1] / best[0]:.2f}x")
    print(f"speedup vs strongest: {min(best[1:]) / best[0]:.2f}x")


if __name__ == "__main__":
    main()
