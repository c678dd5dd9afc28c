"""What a before/after diff costs on the default model: a brain-scan click, %duplicate_layers.

In one run, best CPU time (``time.process_time``) of interleaved repeats after a warm-up:

- ``nm.compare`` the first time from a model state (both sides measured),
- ``nm.compare`` again from the same state (a second click: the before side is remembered),
  and, in that run, the CPU time until its first partial diff (``on_update``: log-probs, top-k,
  perplexity and the continuations up to where they part) is ready to draw,
- the strongest hand-written HF loop that reports the same numbers: per side one batched greedy
  ``generate`` (KV cache) of every prompt, one teacher-forced forward of the before continuation
  that unembeds only the continuation positions, and one perplexity forward; nothing remembered.

The change is the duplication of blocks 12..15 (34 steps), the default prompts and tokens. The
last line is the speed-up of a repeated click against the hand loop.

    python bench/diff.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses import diffing  # noqa: E402
from neuro_magics.core.runner import position_ids_for  # noqa: E402


def hand_loop(subject: nm.Subject, program: list[int]) -> float:
    """Both sides the plain HF way; returns the after side's perplexity (to keep the work live)."""
    prompts, new = diffing.default_prompts(), diffing.DEFAULT_NEW_TOKENS
    encoded = subject.encode(prompts)
    text = subject.tokenizer(diffing.perplexity_text(), return_tensors="pt")["input_ids"]
    body, head = subject.model.model, subject.model.lm_head

    def side() -> tuple[torch.Tensor, float]:
        out = subject.model.generate(**encoded, max_new_tokens=new, do_sample=False,
                                     pad_token_id=subject.pad_token_id)[:, encoded["input_ids"].shape[1]:]
        ids = torch.cat([encoded["input_ids"], before_tokens if before_tokens is not None else out], dim=1)
        mask = torch.cat([encoded["attention_mask"], torch.ones_like(out)], dim=1)
        hidden = body(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask)).last_hidden_state
        head(hidden[:, encoded["input_ids"].shape[1] - 1:])
        logits = head(body(input_ids=text).last_hidden_state)[0, :-1]
        return out, float(torch.nn.functional.cross_entropy(logits, text[0, 1:]).exp())

    with torch.no_grad():
        before_tokens = None
        before_tokens, _ = side()
        with subject.program_applied(program):
            _, perplexity = side()
    return perplexity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    subject = nm.load_model(device="cpu", dtype="float32")
    program = list(range(16)) + list(range(12, 30))
    change = lambda: subject.program_applied(program)  # noqa: E731

    def first() -> None:
        subject.clear_caches()
        nm.compare(subject, change)

    first_view = []

    def again() -> None:
        started = time.process_time()
        seen = []

        def on_update(partial) -> None:
            if not seen:
                seen.append(time.process_time() - started)

        nm.compare(subject, change, on_update=on_update)
        first_view.append(seen[0] if seen else float("nan"))

    cases = [("nm.compare, first diff from a state", first), ("nm.compare, a repeated click", again),
             ("hand-batched HF loop (both sides)", lambda: hand_loop(subject, program))]
    times = [[] for _ in cases]
    for round_ in range(args.repeats + 1):
        for i, (_, work) in enumerate(cases):
            started = time.process_time()
            work()
            if round_:
                times[i].append(time.process_time() - started)
    best = [min(t) for t in times]
    print(f"default model, {len(diffing.default_prompts())} prompts x {diffing.DEFAULT_NEW_TOKENS} new tokens, "
          f"{len(program)} steps after, {args.threads} thread(s); best CPU s of {args.repeats}:")
    for (name, _), seconds in zip(cases, best):
        print(f"  {name:<40} {seconds:7.2f} s")
    print(f"  {'a repeated click, until its first view':<40} {min(first_view[1:]):7.2f} s")
    print(f"first diff vs hand loop: {best[2] / best[0]:.2f}x")
    print(f"speedup vs strongest: {best[2] / best[1]:.2f}x")


if __name__ == "__main__":
    main()
