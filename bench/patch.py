"""Full resid_pre patching sweep of the default model: nm.patch against the strongest baselines.

Baselines, all on the same prompts, all checked to give the same effects (1e-5):
- a hand-batched HF loop: per layer, one HF forward of the corrupt prompt repeated once per
  position, a forward pre-hook on block l swapping row r's position r for the clean state,
  and the unembedding applied to the last position only (the strongest plain-HF way);
- nnsight's batched invokes (per layer one trace, one invoke per position: its documented way
  to batch interventions) and TransformerLens ``get_act_patch_resid_pre`` on its
  ``TransformerBridge`` around the same HF model, when those packages are importable. They are
  not project dependencies; a venv with them: ``pip install nnsight transformer_lens`` beside
  this package (measured with nnsight 0.8.1 and transformer-lens 4.3.0);
- ``naive_sweep``: one hooked HF forward per cell (also the tests' reference).

Times are CPU seconds of this process (``time.process_time``), best of ``--repeats``.

    python bench/patch.py [--threads N] [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.core.answers import answer_token_ids, metric_values  # noqa: E402

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


@torch.no_grad()
def nnsight_batched_sweep(subject: nm.Subject, clean: str, corrupt: str, answers, metric: str = "logit_diff") -> np.ndarray:
    """Normalised resid_pre effects [layers, positions] the nnsight way: the clean run's layer
    inputs saved in one trace, then per layer one trace with one invoke per position (nnsight
    batches a trace's invokes into one forward)."""
    from nnsight import LanguageModel

    model = LanguageModel(subject.model, tokenizer=subject.tokenizer)
    answer_ids = answer_token_ids(subject, answers)
    clean_ids, corrupt_ids = subject.encode(clean)["input_ids"], subject.encode(corrupt)["input_ids"]
    n_layers, n_positions = subject.n_layers, clean_ids.shape[1]
    states, corrupt_logits = [], []
    with model.trace(clean_ids):
        for layer in range(n_layers):
            states.append(model.model.layers[layer].input.save())
        clean_logits = model.lm_head.output[:, -1].save()
    with model.trace(corrupt_ids):
        corrupt_logits.append(model.lm_head.output[:, -1].save())
    clean_metric = metric_values(clean_logits, answer_ids, metric).item()
    corrupt_metric = metric_values(corrupt_logits[0], answer_ids, metric).item()
    effects = np.full((n_layers, n_positions), np.nan, dtype=np.float32)
    for layer in range(n_layers):
        patched = []
        with model.trace() as tracer:
            for position in range(n_positions):
                with tracer.invoke(corrupt_ids):
                    model.model.layers[layer].input[:, position] = states[layer][:, position]
                    patched.append(model.lm_head.output[:, -1].save())
        values = metric_values(torch.cat(patched), answer_ids, metric)
        effects[layer] = ((values - corrupt_metric) / (clean_metric - corrupt_metric)).cpu().numpy()
    return effects


@torch.no_grad()
def transformer_lens_sweep(subject: nm.Subject, clean: str, corrupt: str, answers,
                           metric: str = "logit_diff") -> np.ndarray:
    """Normalised resid_pre effects [layers, positions] the TransformerLens way:
    ``patching.get_act_patch_resid_pre`` on a TransformerBridge around the same HF model."""
    from transformer_lens import patching
    from transformer_lens.model_bridge import TransformerBridge

    from neuro_magics.core.loading import default_model_path

    bridge = TransformerBridge.boot_transformers(str(default_model_path()), hf_model=subject.model,
                                                 tokenizer=subject.tokenizer, device=str(subject.device))
    answer_ids = answer_token_ids(subject, answers)
    clean_ids, corrupt_ids = subject.encode(clean)["input_ids"], subject.encode(corrupt)["input_ids"]
    clean_logits, cache = bridge.run_with_cache(clean_ids)
    clean_metric = metric_values(clean_logits[:, -1], answer_ids, metric).item()
    corrupt_metric = metric_values(bridge(corrupt_ids)[:, -1], answer_ids, metric).item()

    def normalised(logits: torch.Tensor) -> torch.Tensor:
        return (metric_values(logits[:, -1], answer_ids, metric)[0] - corrupt_metric) / (clean_metric - corrupt_metric)

    return patching.get_act_patch_resid_pre(bridge, corrupt_ids, cache, normalised).cpu().numpy()


@torch.no_grad()
def hand_batched_sweep(subject: nm.Subject, clean: str, corrupt: str, answers, metric: str = "logit_diff") -> np.ndarray:
    """Normalised resid_pre effects [layers, positions]: per layer one batched HF forward whose
    row r patches position r, scoring only the last position."""
    answer_ids = answer_token_ids(subject, answers)
    clean_ids, corrupt_ids = subject.encode(clean)["input_ids"], subject.encode(corrupt)["input_ids"]
    body, head = subject.model.get_decoder(), subject.model.get_output_embeddings()
    clean_hidden = body(clean_ids, use_cache=False, output_hidden_states=True).hidden_states
    scores = {name: metric_values(head(body(ids, use_cache=False).last_hidden_state[:, -1]), answer_ids, metric).item()
              for name, ids in (("clean", clean_ids), ("corrupt", corrupt_ids))}
    n_tokens = corrupt_ids.shape[1]
    rows = torch.arange(n_tokens)
    batch = corrupt_ids.expand(n_tokens, -1)
    effects = np.zeros((subject.n_layers, n_tokens), dtype=np.float32)
    for layer in range(subject.n_layers):
        donor = clean_hidden[layer][0]

        def swap(module, args, kwargs):
            hidden = (args[0] if args else kwargs["hidden_states"]).clone()
            hidden[rows, rows] = donor[rows]
            return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})

        handle = subject.blocks[layer].register_forward_pre_hook(swap, with_kwargs=True)
        try:
            last = body(batch, use_cache=False).last_hidden_state[:, -1]
        finally:
            handle.remove()
        patched = metric_values(head(last), answer_ids, metric).numpy()
        effects[layer] = (patched - scores["corrupt"]) / (scores["clean"] - scores["corrupt"])
    return effects


def _cpu_time(function, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        value = function()
        best = min(best, time.process_time() - started)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs (default 2)")
    parser.add_argument("--quick", action="store_true", help="naive per-cell loop on every 6th layer only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    subject = nm.load_model(device="cpu", dtype="float32")
    n_tokens = subject.encode(CLEAN)["input_ids"].shape[1]
    print(f"model {subject.name}: {subject.n_layers} layers x {n_tokens} positions, torch threads "
          f"{torch.get_num_threads()}, CPU seconds, best of {args.repeats}")

    nm.patch(subject, CLEAN, CORRUPT, ANSWERS, progress=False)  # warm-up (allocations, kernels)
    ours, result = _cpu_time(lambda: nm.patch(subject, CLEAN, CORRUPT, ANSWERS, progress=False), args.repeats)
    print(f"nm.patch: {ours:.2f} s")
    baselines: dict[str, float] = {}

    def check(name: str, effects: np.ndarray, layers=slice(None)) -> None:
        difference = float(np.abs(result.effect[layers] - effects).max())
        print(f"  max |nm.patch - {name}| over normalised effects: {difference:.2e}")
        if difference > 1e-5:
            sys.exit(f"nm.patch and {name} differ by {difference:.2e}")

    seconds, effects = _cpu_time(lambda: hand_batched_sweep(subject, CLEAN, CORRUPT, ANSWERS), args.repeats)
    baselines["hand-batched HF loop, last position only"] = seconds
    print(f"hand-batched HF loop, last position only: {seconds:.2f} s")
    check("hand-batched HF loop", effects)
    for name, sweep in (("nnsight", nnsight_batched_sweep), ("transformer_lens", transformer_lens_sweep)):
        if importlib.util.find_spec(name) is None:
            print(f"{name}: not importable here, skipped")
            continue
        seconds, effects = _cpu_time(lambda: sweep(subject, CLEAN, CORRUPT, ANSWERS), args.repeats)
        baselines[name] = seconds
        print(f"{name}: {seconds:.2f} s")
        check(name, effects)

    layers = list(range(0, subject.n_layers, 6)) if args.quick else list(range(subject.n_layers))
    started = time.process_time()
    naive = naive_sweep(subject, CLEAN, CORRUPT, ANSWERS, layers=layers)
    naive_time = (time.process_time() - started) * subject.n_layers / len(layers)
    print(f"naive (one hooked HF forward per cell, logits everywhere): {naive_time:.2f} s"
          + (" (extrapolated from every 6th layer)" if args.quick else ""))
    check("naive", naive, layers)

    k, p = np.unravel_index(np.nanargmax(result.effect), result.effect.shape)
    print(f"strongest cell: layer {k}, position {p} ({result.clean_tokens[p]!r}), effect {result.effect[k, p]:.3f}")
    strongest = min(baselines, key=baselines.get)
    print(f"speedup vs naive: {naive_time / ours:.2f}x")
    print(f"speedup vs strongest: {baselines[strongest] / ours:.2f}x")


if __name__ == "__main__":
    main()
