"""What ``nm.diff_models`` costs when a side rewrites every weight: the default model pruned by
magnitude (50%, every block matrix), ``current`` against ``original`` on the default corpus
(10 texts x 64 tokens), without the probes.

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up:

- ``nm.diff_models`` as it is now (side-major: the state switches once per chunk of batches);
- the same function as committed at ``--before`` (default ``main``), loaded from git beside it;
- the strongest hand-written loop that reports the same numbers: the state entered once per side,
  every batch through HF with ``output_hidden_states``, log-softmax and KL, drift in float64, the
  PCA of the differences, and per matrix the relative Frobenius change and
  ``torch.linalg.matrix_rank`` (an SVD in float64) at the same tolerance.

    python bench/diff_models.py [--repeats 1] [--threads 1] [--before main]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _revision import best_cpu_times, module_at  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses import model_diff  # noqa: E402
from neuro_magics.core.adapters import weight_matrix  # noqa: E402
from neuro_magics.core.programs import LayerProgram  # noqa: E402
from neuro_magics.core.runner import position_ids_for  # noqa: E402


@torch.no_grad()
def hand_loop(subject: nm.Subject, batch_size: int = 8, max_tokens: int = 64) -> float:
    """Both sides the plain HF way, each state entered once; returns the mean KL."""
    texts = model_diff._default_corpus()
    rows = [list(subject.tokenizer(t)["input_ids"])[:max_tokens] for t in texts]
    state = (subject.program, subject.interventions)
    sides = {}
    for name, (program, interventions) in (("b", (LayerProgram.identity(subject.n_layers), ())), ("a", state)):
        subject.set_state(program, interventions)
        weights = {n: weight_matrix(m).detach().clone() for n, m in subject.block_matrices().items()}
        outputs = []
        for k in range(0, len(rows), batch_size):
            ids, mask = model_diff._batch(rows[k:k + batch_size], subject.pad_token_id, subject.device)
            out = subject.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask),
                                output_hidden_states=True, use_cache=False)
            outputs.append((out.logits.log_softmax(-1), torch.stack(out.hidden_states[1:]), mask))
        sides[name] = (weights, outputs)
    kl_total, count = 0.0, 0
    differences = []
    for (la, ha, mask), (lb, hb, _) in zip(sides["a"][1], sides["b"][1]):
        kl = (la.exp() * (la - lb)).sum(-1)
        kl_total += float(kl[mask.bool()].sum())
        count += int(mask.sum())
        keep = mask.bool().clone()
        keep[torch.arange(len(mask)), mask.argmax(-1)] = False
        a, b = ha[:, keep].double(), hb[:, keep].double()
        (b - a).norm(dim=-1).mean(-1), ((b - a).norm(dim=-1) / a.norm(dim=-1)).mean(-1)
        torch.nn.functional.cosine_similarity(a, b, dim=-1).mean(-1)
        differences.append(b - a)
    difference = torch.cat(differences, 1)
    for step in range(difference.shape[0]):
        torch.linalg.svdvals(difference[step] - difference[step].mean(0))
    eps = torch.finfo(torch.float32).eps
    for name, wa in sides["a"][0].items():
        wa, wb = wa.double(), sides["b"][0][name].double()
        change = wb - wa
        float(change.norm() / wa.norm())
        torch.linalg.matrix_rank(change, atol=eps * float(wa.norm() + wb.norm()))
    subject.set_state(*state)
    return kl_total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="main", help="git revision whose model_diff.py is timed beside")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    nm.prune(subject, "magnitude", 0.5)
    before = module_at(args.before, "neuro_magics/analyses/model_diff.py")
    kept = {}

    def ours() -> None:
        kept["now"] = nm.diff_models(subject, "current", "original", probes=False, progress=False)

    def then() -> None:
        kept["then"] = before.diff_models(subject, "current", "original", probes=False, progress=False)

    cases = [("nm.diff_models (now)", ours), (f"diff_models at {args.before}", then),
             ("hand HF loop, side-major", lambda: hand_loop(subject))]
    best = best_cpu_times(cases, args.repeats)
    now, then_result = kept["now"], kept["then"]
    for name in ("kl", "drift_l2", "drift_relative", "drift_cosine", "drift_pca", "weight_change"):
        x, y = getattr(now, name), getattr(then_result, name)
        print(f"  {name:<16} max |now - {args.before}| = {np.nanmax(np.abs(x - y)):.2e} (largest {np.nanmax(np.abs(y)):.3g})")
    print(f"  weight_rank      equal to {args.before}: {np.array_equal(now.weight_rank, then_result.weight_rank)}")
    print(f"default model pruned 50% (magnitude), current vs original, {len(now.texts)} texts x "
          f"{now.kl.shape[1]} tokens, {args.threads} thread(s); best CPU s of {args.repeats}:")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<34} {seconds:7.2f} s")
    print(f"speedup vs {args.before}: {best[1] / best[0]:.2f}x")
    print(f"speedup vs strongest: {min(best[1:]) / best[0]:.2f}x")


if __name__ == "__main__":
    main()
