"""Capture overhead of a scan of the default model, and the widget payload of a big scan.

In one run, on the same prompt, each the best CPU time (``time.process_time``) of several
interleaved repeats after a warm-up: the runner and ``nm.scan`` with captures, against plain
forwards that compute what the capture computes: the HF body alone (no unembedding: a
residual capture needs no logits), the HF body returning every residual stream
(``output_hidden_states``: the same captures the HF way), and, for the logit-lens rows only,
the full forward with logits at every position. TransformerLens ``run_with_cache`` and
nnsight's trace are timed when importable. Then a 30-layer x 512-token lens scan and the
bytes its heatmap widget sends to the browser. The last line compares ``nm.scan`` of the
residual stream with the fastest way that returns the same captures.

    python bench/scan.py [--tokens 128] [--repeats 5] [--threads N]
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


#: The one case that computes logits (at every layer): compared with the full forward.
LENS_CASE = "nm.scan, all sites + logit lens (top-5)"


def prompt_of(subject: nm.Subject, n_tokens: int) -> str:
    """English text that encodes to exactly ``n_tokens`` tokens."""
    ids = subject.tokenizer(PARAGRAPH * (n_tokens // 40 + 2), add_special_tokens=False)["input_ids"]
    for cut in sorted(range(n_tokens - 8, n_tokens + 8), key=lambda c: abs(c - n_tokens)):
        text = subject.tokenizer.decode(ids[:cut])
        if subject.encode(text)["input_ids"].shape[1] == n_tokens:
            return text
    raise RuntimeError(f"could not build a {n_tokens}-token prompt")


def best_cpu_times(cases: list[tuple[str, object]], repeats: int) -> list[float]:
    """Best CPU time of ``repeats`` per case after a warm-up; the cases are interleaved so
    that load from other processes on a shared machine falls on all of them alike."""
    times = [[] for _ in cases]
    for round_ in range(repeats + 1):
        for i, (_, work) in enumerate(cases):
            started = time.process_time()
            work()
            if round_:
                times[i].append(time.process_time() - started)
    return [min(t) for t in times]


def transformer_lens_case(subject: nm.Subject, ids: torch.Tensor):
    """TransformerLens's idiomatic capture of every residual stream (raises ImportError when absent)."""
    from transformer_lens import HookedTransformer

    model = HookedTransformer.from_pretrained_no_processing(subject.model.name_or_path, hf_model=subject.model,
                                                            tokenizer=subject.tokenizer, device="cpu")
    return lambda: model.run_with_cache(ids, names_filter=lambda name: name.endswith("hook_resid_pre"))


def nnsight_case(subject: nm.Subject, ids: torch.Tensor):
    """nnsight's trace saving every block's output (raises ImportError when absent)."""
    from nnsight import NNsight

    model = NNsight(subject.model)
    blocks = subject.adapter.block_list(model._model)
    paths = [name for name, module in subject.model.named_modules() if any(module is b for b in blocks)]

    def trace():
        with model.trace(ids, use_cache=False):
            saved = [_module_at(model, path).output.save() for path in paths]
        return saved

    return trace


def _module_at(root, path: str):
    for part in path.split("."):
        root = getattr(root, part)
    return root


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
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (torch.set_num_threads)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    subject = nm.load_model(device="cpu", dtype="float32")
    prompt = prompt_of(subject, args.tokens)
    ids = subject.encode(prompt)["input_ids"]
    print(f"{subject.name}: {subject.n_layers} layers, d_model {subject.d_model}, vocab {subject.vocab_size}; "
          f"prompt {ids.shape[1]} tokens; {torch.get_num_threads()} threads; best of {args.repeats}, interleaved")

    def runner(sites):
        return lambda: nm.run(subject, nm.prepare(subject, ids), capture=nm.Capture(sites=sites), logits_at=None)

    body = subject.adapter.body_module(subject.model)
    cases = [
        ("plain HF body forward (no unembedding)", lambda: body(ids, use_cache=False)),
        ("HF body, output_hidden_states (same captures)", lambda: body(ids, use_cache=False, output_hidden_states=True)),
        ("plain HF forward, logits at every position", lambda: subject.model(ids, use_cache=False)),
        ("runner, residual captures (resid_pre + resid_post)", runner(("resid_pre", "resid_post"))),
        ("runner, all sites", runner(tuple(s for s in SITES if s != "attn_weights"))),  # weights need eager
        ("nm.scan, residual sites, no lens", lambda: nm.scan(subject, prompt, sites="resid", progress=False)),
        ("nm.scan, all sites, no lens", lambda: nm.scan(subject, prompt, sites="resid,attn,mlp,neurons", progress=False)),
        (LENS_CASE, lambda: nm.scan(subject, prompt, sites="resid,attn,mlp,neurons",
                                                                    lens=True, progress=False)),
    ]
    peers = []
    for label, make in (("TransformerLens run_with_cache", transformer_lens_case), ("nnsight trace, every resid", nnsight_case)):
        try:
            peers.append((label, make(subject, ids)))
        except ImportError:
            print(f"  {label:<52} not installed")
    seconds_per_case = best_cpu_times(cases + peers, args.repeats)
    seconds = dict(zip((label for label, _ in cases + peers), seconds_per_case))
    body_s, full_s = seconds[cases[0][0]], seconds[cases[2][0]]
    for label, case_s in seconds.items():
        reference = (f"{case_s / full_s:5.2f}x the full forward" if label == LENS_CASE
                     else f"{case_s / body_s:5.2f}x the body forward")
        print(f"  {label:<52} {case_s * 1000:8.1f} ms CPU   {reference}")
    strongest_label = min([cases[1][0], *(label for label, _ in peers)], key=seconds.get)
    ours_s = seconds["nm.scan, residual sites, no lens"]
    print(f"residual capture: nm.scan {ours_s * 1000:.1f} ms against {strongest_label} {seconds[strongest_label] * 1000:.1f} ms; "
          f"capture overhead over the body forward: {ours_s / body_s:.2f}x")

    big_prompt = prompt_of(subject, 512)
    started = time.perf_counter()
    big = nm.scan(subject, big_prompt, lens=True, sites="resid", progress=False)
    big_scan_s = time.perf_counter() - started
    size = payload_bytes(scan_heatmap(big))
    print(f"lens scan of {len(big.steps)} layers x {len(big.tokens)} tokens: {big_scan_s:.1f} s wall; heatmap widget payload "
          f"{size / 2**20:.2f} MiB ({size:,} bytes; aim < 2 MiB: {'ok' if size < 2 * 2**20 else 'OVER'})")
    print(f"speedup vs strongest: {seconds[strongest_label] / ours_s:.2f}x")


if __name__ == "__main__":
    main()
