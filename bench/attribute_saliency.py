"""What saliency costs in ``nm.attribute`` on the default model, against Captum on the same numbers.

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up, on a
``--tokens``-token prompt, target given (the model's own next token), no DLA:

- ``nm.attribute(method="saliency", dla=False)`` now (one forward and backward, the model's own
  attention);
- the same function as committed at ``--before`` (default ``main``: eager attention and two
  extra forwards), loaded from git beside it;
- Captum's ``Saliency`` (``abs=False``, then the L2 norm per token) on HF's forward from
  ``inputs_embeds``, the log-prob of the target at the last position; when Captum is not
  installed, the same gradient by hand with ``torch.autograd``.

    python bench/attribute_saliency.py [--tokens 64] [--repeats 5] [--threads 1] [--before main]
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
from scan import prompt_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="main")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    prompt = prompt_of(subject, args.tokens)
    ids = subject.encode(prompt)["input_ids"]
    with torch.no_grad():
        target_id = int(subject.model(ids).logits[0, -1].argmax())
    target = subject.tokenizer.decode([target_id])
    before = module_at(args.before, "neuro_magics/analyses/attribution.py")
    embed = subject.model.get_input_embeddings()

    def logprob(embeds: torch.Tensor) -> torch.Tensor:
        return subject.model(inputs_embeds=embeds, use_cache=False).logits[:, -1].log_softmax(-1)[:, target_id]

    try:
        from captum.attr import Saliency

        def baseline() -> np.ndarray:
            embeds = embed(ids).detach()
            return Saliency(logprob).attribute(embeds, abs=False)[0].norm(dim=-1).numpy()
        baseline_name = "Captum Saliency on HF's forward"
    except ImportError:
        def baseline() -> np.ndarray:
            embeds = embed(ids).detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(logprob(embeds).sum(), embeds)
            return gradient[0].norm(dim=-1).numpy()
        baseline_name = "torch.autograd on HF's forward"

    def ours() -> np.ndarray:
        return nm.attribute(subject, prompt, target=target, method="saliency", dla=False, progress=False).scores["saliency"][0]

    def then() -> np.ndarray:
        return before.attribute(subject, prompt, target=target, method="saliency", dla=False,
                                progress=False).scores["saliency"][0]

    reference = baseline()
    for name, work in (("now", ours), (args.before, then)):
        print(f"  saliency {name:<6} max relative difference to {baseline_name}: "
              f"{np.abs(work() - reference).max() / np.abs(reference).max():.1e}")
    cases = [("nm.attribute saliency (now)", ours), (f"nm.attribute saliency at {args.before}", then),
             (baseline_name, baseline)]
    best = best_cpu_times(cases, args.repeats)
    print(f"{subject.name}, {ids.shape[1]} tokens, {args.threads} thread(s); best CPU ms of {args.repeats}:")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<40} {seconds * 1000:8.1f} ms   {seconds / best[2]:.2f}x {baseline_name.split(' on')[0]}")
    print(f"speedup vs {args.before}: {best[1] / best[0]:.2f}x")
    print(f"speedup vs strongest: {best[2] / best[0]:.2f}x")


if __name__ == "__main__":
    main()
