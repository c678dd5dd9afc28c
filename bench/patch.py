"""Full resid_pre patching sweep of the default model: nm.patch against the naive way.

The naive way is one hooked HF forward per (layer, position) cell: a forward pre-hook on
block l swaps the clean state in at position p, and the whole model runs again. nm.patch
starts each layer's cells from the cached corrupt state at that layer, batches them, and
unembeds only the last position. Both run here, on the same prompts, and must agree.

    python bench/patch.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.analyses.patching import answer_token_ids, metric_values  # noqa: E402

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
ANSWERS = (" Mary", " John")


@torch.no_grad()
def naive_sweep(subject: nm.Subject, clean: str, corrupt: str, answers, metric: str = "logit_diff",
                layers=None) -> np.ndarray:
    """Normalised resid_pre effects [layers, positions], one hooked HF forward per cell
    (identity program: block l's input is HF's hidden_states[l])."""
    answer_ids = answer_token_ids(subject, answers)
    clean_ids, corrupt_ids = subject.encode(clean)["input_ids"], subject.encode(corrupt)["input_ids"]
    clean_out = subject.model(clean_ids, use_cache=False, output_hidden_states=True)
    clean_metric = metric_values(clean_out.logits[:, -1], answer_ids, metric).item()
    corrupt_metric = metric_values(subject.model(corrupt_ids, use_cache=False).logits[:, -1], answer_ids, metric).item()
    layers = range(subject.n_layers) if layers is None else layers
    effects = np.full((len(layers), clean_ids.shape[1]), np.nan, dtype=np.float32)
    for row, layer in enumerate(layers):
        donor = clean_out.hidden_states[layer]
        for position in range(clean_ids.shape[1]):
            def swap(module, args, kwargs, position=position):
                hidden = (args[0] if args else kwargs["hidden_states"]).clone()
                hidden[:, position] = donor[:, position]
                if args:
                    return (hidden, *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": hidden}

            handle = subject.blocks[layer].register_forward_pre_hook(swap, with_kwargs=True)
            try:
                logits = subject.model(corrupt_ids, use_cache=False).logits[:, -1]
            finally:
                handle.remove()
            patched = metric_values(logits, answer_ids, metric).item()
            effects[row, position] = (patched - corrupt_metric) / (clean_metric - corrupt_metric)
    return effects


def main(quick: bool = False) -> None:
    torch.manual_seed(0)
    subject = nm.load_model(device="cpu", dtype="float32")
    n_tokens = subject.encode(CLEAN)["input_ids"].shape[1]
    layers = list(range(0, subject.n_layers, 6)) if quick else list(range(subject.n_layers))
    print(f"model {subject.name}: {subject.n_layers} layers, prompt {n_tokens} tokens, "
          f"{len(layers) * n_tokens} cells naive, torch threads {torch.get_num_threads()}")

    nm.patch(subject, CLEAN, CORRUPT, ANSWERS, progress=False)  # warm-up (allocations, kernels)
    started = time.perf_counter()
    result = nm.patch(subject, CLEAN, CORRUPT, ANSWERS, progress=False)
    ours = time.perf_counter() - started
    print(f"nm.patch (batched, prefix reuse, last-position logits): {ours:.2f} s "
          f"for {result.effect.size} cells")

    started = time.perf_counter()
    naive = naive_sweep(subject, CLEAN, CORRUPT, ANSWERS, layers=layers)
    naive_time = time.perf_counter() - started
    naive_full = naive_time * subject.n_layers / len(layers)
    print(f"naive (one hooked HF forward per cell): {naive_time:.2f} s for {naive.size} cells"
          + (f" -> {naive_full:.2f} s for all layers (extrapolated)" if quick else ""))

    difference = float(np.abs(result.effect[layers] - naive).max())
    print(f"max |nm.patch - naive| over normalised effects: {difference:.2e}")
    if difference > 1e-4:
        sys.exit(f"results differ by {difference:.2e}")
    k, p = np.unravel_index(np.nanargmax(result.effect), result.effect.shape)
    print(f"strongest cell: layer {k}, position {p} ({result.clean_tokens[p]!r}), effect {result.effect[k, p]:.3f}")
    print(f"speedup: {naive_full / ours:.2f}x")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
