"""What the logit lens costs on the default model: every step x token of a ``--tokens``-token
prompt read through the final norm and unembedding, top-5 kept.

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up:

- ``nm.scan(lens=True, sites="resid")`` with the top-k alone (``lens_metrics=[]``), and with all
  three per-cell metrics (target probability, rank, entropy: the default);
- the same scan as committed at ``--before`` (default ``main``: all three always, rank as an
  int64 sum), loaded from git beside it;
- a hand-written HF loop, what nnsight's and TransformerLens's logit-lens recipes compute: one
  forward with ``output_hidden_states``, then per chunk of rows the final norm, ``lm_head``,
  softmax and top-5 (nnsight and TransformerLens are not installed here; the measured facts in
  DESIGN.md put ours at 1.2-1.35x them with all three metrics).

    python bench/lens.py [--tokens 128] [--repeats 3] [--threads 1] [--before main]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from _revision import best_cpu_times, module_at  # noqa: E402

import neuro_magics as nm  # noqa: E402
from scan import prompt_of  # noqa: E402


@torch.no_grad()
def hand_lens(subject: nm.Subject, ids: torch.Tensor, k: int = 5, chunk: int = 256) -> torch.Tensor:
    hidden = subject.model(ids, output_hidden_states=True, use_cache=False).hidden_states[1:]
    rows = torch.stack(hidden[:-1]).reshape(-1, hidden[0].shape[-1])
    norm, head = subject.model.model.norm, subject.model.lm_head
    tops = [head(norm(rows[s:s + chunk])).softmax(-1).topk(k, dim=-1).indices for s in range(0, len(rows), chunk)]
    return torch.cat(tops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="main")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    prompt = prompt_of(subject, args.tokens)
    ids = subject.encode(prompt)["input_ids"]
    before = module_at(args.before, "neuro_magics/analyses/scanning.py")
    top_only = nm.scan(subject, prompt, sites="resid", lens=True, lens_metrics=[], progress=False)
    every = nm.scan(subject, prompt, sites="resid", lens=True, progress=False)
    then = before.scan(subject, prompt, sites="resid", lens=True, progress=False)
    print(f"  top-k equal to {args.before}: {(top_only.top_ids == then.top_ids).all()}; metrics equal: "
          f"{(every.metrics == then.metrics).all()} (max |difference| {abs(every.metrics - then.metrics).max():.1e})")
    cases = [("nm.scan lens, top-k only", lambda: nm.scan(subject, prompt, sites="resid", lens=True, lens_metrics=[],
                                                           progress=False)),
             ("nm.scan lens, all three metrics", lambda: nm.scan(subject, prompt, sites="resid", lens=True,
                                                                  progress=False)),
             (f"nm.scan lens at {args.before} (all three)", lambda: before.scan(subject, prompt, sites="resid",
                                                                                lens=True, progress=False)),
             ("hand HF loop (hidden states, norm, head, top-5)", lambda: hand_lens(subject, ids))]
    best = best_cpu_times(cases, args.repeats)
    print(f"{subject.name}, {ids.shape[1]} tokens x {subject.n_layers} steps, {args.threads} thread(s); "
          f"best CPU s of {args.repeats}:")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<50} {seconds:6.2f} s   {seconds / best[3]:.2f}x the hand loop")
    print(f"all three metrics: speedup vs {args.before}: {best[2] / best[1]:.2f}x")
    print(f"speedup vs strongest: {best[3] / best[0]:.2f}x")


if __name__ == "__main__":
    main()
