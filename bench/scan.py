"""Capture overhead of a scan of the default model, and the widget payload of a big scan.

In one run, on the same prompt: a plain HF forward (``model(ids, use_cache=False)``), the
runner with residual captures, the runner with every site, and ``nm.scan`` itself (without
and with the logit lens); each the best of several interleaved repeats after a warm-up. Then a
30-layer x 512-token lens scan and the bytes its heatmap widget sends to the browser.

    python bench/scan.py [--tokens 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.core.runner import SITES  # noqa: E402
from neuro_magics.widgets.views import scan_heatmap  # noqa: E402

PARAGRAPH = (
    "The history of the city begins with a small settlement on the river, where traders met to exchange "
    "salt, grain and wool. Over the centuries the market grew into a town, the town into a city, and the "
    "city into the capital of a large and prosperous region. Its people built bridges, churches and "
    "libraries, and they argued, as people do, about taxes, roads and the price of bread. "
)


def prompt_of(subject: nm.Subject, n_tokens: int) -> str:
    """English text that encodes to exactly ``n_tokens`` tokens."""
    ids = subject.tokenizer(PARAGRAPH * (n_tokens // 40 + 2), add_special_tokens=False)["input_ids"]
    for cut in sorted(range(n_tokens - 8, n_tokens + 8), key=lambda c: abs(c - n_tokens)):
        text = subject.tokenizer.decode(ids[:cut])
        if subject.encode(text)["input_ids"].shape[1] == n_tokens:
            return text
    raise RuntimeError(f"could not build a {n_tokens}-token prompt")


def best_times(cases: list[tuple[str, object]], repeats: int) -> list[float]:
    """Best of ``repeats`` per case after a warm-up; the cases are interleaved so that load
    from other processes on a shared machine falls on all of them alike."""
    times = [[] for _ in cases]
    for round_ in range(repeats + 1):
        for i, (_, work) in enumerate(cases):
            started = time.perf_counter()
            work()
            if round_:
                times[i].append(time.perf_counter() - started)
    return [min(t) for t in times]


def payload_bytes(widget) -> int:
    """Bytes a widget sends to the front end: its JSON state plus binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    return len(json.dumps(state)) + sum(memoryview(b).nbytes for b in buffers)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="prompt length for the overhead timings")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    subject = nm.load_model(device="cpu", dtype="float32")
    prompt = prompt_of(subject, args.tokens)
    ids = subject.encode(prompt)["input_ids"]
    print(f"{subject.name}: {subject.n_layers} layers, d_model {subject.d_model}, vocab {subject.vocab_size}; "
          f"prompt {ids.shape[1]} tokens; {torch.get_num_threads()} threads; best of {args.repeats}, interleaved")

    def runner(sites):
        return lambda: nm.run(subject, nm.prepare(subject, ids), capture=nm.Capture(sites=sites), logits_at=None)

    cases = [
        ("plain HF forward (logits at every position)", lambda: subject.model(ids, use_cache=False)),
        ("plain HF body forward (no unembedding)", lambda: subject.adapter.body_module(subject.model)(ids, use_cache=False)),
        ("runner, residual captures (resid_pre + resid_post)", runner(("resid_pre", "resid_post"))),
        ("runner, all sites", runner(SITES)),
        ("nm.scan, residual sites, no lens", lambda: nm.scan(subject, prompt, sites="resid", progress=False)),
        ("nm.scan, all sites, no lens", lambda: nm.scan(subject, prompt, sites="resid,attn,mlp,neurons", progress=False)),
        ("nm.scan, all sites + logit lens (top-5)", lambda: nm.scan(subject, prompt, sites="resid,attn,mlp,neurons",
                                                                    lens=True, progress=False)),
    ]
    seconds_per_case = best_times(cases, args.repeats)
    baseline = seconds_per_case[0]
    for (label, _), seconds in zip(cases, seconds_per_case):
        print(f"  {label:<52} {seconds * 1000:8.1f} ms   {seconds / baseline:5.2f}x plain forward")

    big_prompt = prompt_of(subject, 512)
    started = time.perf_counter()
    big = nm.scan(subject, big_prompt, lens=True, sites="resid", progress=False)
    seconds = time.perf_counter() - started
    size = payload_bytes(scan_heatmap(big))
    print(f"lens scan of {len(big.steps)} layers x {len(big.tokens)} tokens: {seconds:.1f} s; heatmap widget payload "
          f"{size / 2**20:.2f} MiB ({size:,} bytes; aim < 2 MiB: {'ok' if size < 2 * 2**20 else 'OVER'})")


if __name__ == "__main__":
    main()
