"""The engine on a CUDA device: every heavy path checked against HF on that device, then timed.

    python bench/gpu.py --model DIR [--dtype float32|bfloat16] [--quick] [--brainscan-bench]

``--model`` is a folder with ``config.json`` and the tokenizer of the model to build; without
weights in it, the model is SmolLM2-135M-Instruct's architecture with seeded random weights
(the real weights do not fit the GPU machine's 64 MiB upload): speed does not depend on the
values, and every check compares our path with HF's own forward of the same weights.

Checks (each prints its largest difference and fails loudly past its tolerance):
- residual captures of the runner = HF ``output_hidden_states`` on the GPU;
- a patching map on the GPU = the same map on the CPU (same weights);
- brain-scan item scores on the GPU = the CPU's, on a few configs;
- ``nm.compare``'s after side (speculative reuse of the before side) = HF ``generate`` per prompt;
- a LoRA fine-tune trains on the GPU and ``remove_adapters`` restores every weight bit for bit;
- the checkup's sink mass and head importance on the GPU = the CPU's;
- an SAE trains and a model diff runs on GPU activations; the FastICA of ``%%networks`` in torch
  on the GPU gives scikit-learn's maps on the same signals.
Timings are wall seconds with ``torch.cuda.synchronize()`` around each. ``--brainscan-bench``
then runs ``bench/brainscan.py --device cuda`` (the sweep against per-config loops) on this model.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import runpy
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import neuro_magics as nm  # noqa: E402
from neuro_magics.core.corpus import builtin_corpus  # noqa: E402
from neuro_magics.analyses.networks import decompose  # noqa: E402
from neuro_magics.core.runner import Capture, position_ids_for, prepare, run  # noqa: E402

PROMPTS = ["The capital of France is", "def add(a, b):\n    return", "Seven times eight is", "Once upon a time"]


def build(folder: Path, device: str, dtype: torch.dtype, overrides: dict | None = None) -> nm.Subject:
    """The model in ``folder``: its weights if it has them, else seeded random ones, initialised
    on ``device`` (a 7B model initialises in seconds there, minutes on the CPU). ``overrides``
    change the config (another shape: ``{"model_type": "qwen2", "hidden_size": 3584, ...}``)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if any(folder.glob("*.safetensors")) and not overrides:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
        name = folder.name
    else:
        config = AutoConfig.from_pretrained(folder)
        if overrides:
            base = config.to_dict()
            kind = overrides.get("model_type", base["model_type"])
            base.update(overrides)
            base.pop("model_type", None)
            config = AutoConfig.for_model(kind, **{k: v for k, v in base.items() if k not in ("architectures",)})
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        n = sum(p.numel() for p in model.parameters())
        name = f"{folder.name} (random weights)" if not overrides else f"{config.model_type} {n / 1e9:.1f}B (random weights)"
    return nm.Subject(model, tokenizer, name=name)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextlib.contextmanager
def timed(label: str, times: dict):
    synchronize()
    started = time.perf_counter()
    yield
    synchronize()
    times[label] = time.perf_counter() - started
    print(f"  {label:<58} {times[label]:8.2f} s", flush=True)


def check(label: str, difference: float, tolerance: float) -> None:
    verdict = "ok" if difference <= tolerance else "FAILED"
    print(f"  {label:<58} max diff {difference:.3g} (tolerance {tolerance:g}) {verdict}", flush=True)
    if difference > tolerance:
        raise SystemExit(f"check failed: {label}")


@torch.no_grad()
def check_runner(subject: nm.Subject, tolerance: float) -> None:
    encoded = subject.encode(PROMPTS)
    mask = encoded["attention_mask"]
    hf = subject.model(**encoded, position_ids=position_ids_for(mask), output_hidden_states=True, use_cache=False)
    ours = run(subject, prepare(subject, encoded["input_ids"], mask),
               capture=Capture(sites=("resid_pre",), steps=range(subject.n_layers)), logits_at=None)
    hf_states = torch.stack(hf.hidden_states[: subject.n_layers])
    valid = mask.bool()[None, :, :, None]
    captured = ours.captures["resid_pre"].to(hf_states.device).float()
    difference = ((captured - hf_states.float()).abs() * valid).max().item()
    check("runner resid_pre captures = HF hidden states", difference, tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="folder with config.json and the tokenizer")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--quick", action="store_true", help="fewer steps in the timed runs")
    parser.add_argument("--brainscan-bench", action="store_true", help="also run bench/brainscan.py on the GPU")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to try this script out")
    parser.add_argument("--checks-only", action="store_true", help="stop after the checks")
    parser.add_argument("--bench-only", action="store_true", help="only the brain-scan bench (with --brainscan-bench)")
    parser.add_argument("--config", default=None, help="JSON overrides of the model's config (another shape)")
    parser.add_argument("--bench-args", default="", help="more arguments for bench/brainscan.py")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: this script checks and times the GPU paths.")
    dtype = getattr(torch, args.dtype)
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2
    overrides = json.loads(args.config) if args.config else None
    if args.bench_only:
        return run_brainscan_bench(args, dtype, overrides)
    subject = build(args.model, args.device, dtype, overrides)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"{subject.name} on {where}, {args.dtype}, torch {torch.__version__}")
    times: dict[str, float] = {}

    print("checks against HF on the same device:")
    check_runner(subject, tolerance * 10)

    clean, corrupt = "When Mary and John went to the store, John gave a drink to", \
        "When Mary and John went to the store, Mary gave a drink to"
    # Against the CPU in float32 only: bfloat16 rounding (about 3 digits, over 30 blocks) differs
    # between devices by more than random weights' tiny clean-corrupt gaps and score spreads.
    cpu = nm.Subject(copy.deepcopy(subject.model).to("cpu"), subject.tokenizer, name=subject.name) \
        if dtype == torch.float32 else None  # the same weights (random ones differ by the device they are drawn on)
    if cpu is not None:
        on_gpu = nm.patch(subject, clean, corrupt, [" Mary", " John"], progress=False)
        on_cpu = nm.patch(cpu, clean, corrupt, [" Mary", " John"], progress=False)
        check("patched logit differences GPU = CPU", float(np.abs(on_gpu.patched_metric - on_cpu.patched_metric).max()),
              1e-3)
        small = dict(limit=4, layers="10:16", progress=False)
        scan_gpu, scan_cpu = nm.brainscan(subject, **small), nm.brainscan(cpu, **small)
        finished = ~np.isnan(scan_cpu.scores)
        check("brain-scan scores GPU = CPU (4 items, configs in 10:16)",
              float(np.abs(scan_gpu.scores[finished] - scan_cpu.scores[finished]).max()), 1e-3)

    with timed("checkup (24 texts: statistics, head gradients, spectra)", times):
        health = nm.checkup(subject)
    if cpu is not None:
        reference = nm.checkup(cpu, spectra=False)
        check("checkup sink mass and head importance GPU = CPU (relative)",
              max(float(np.abs(health.sink_mass - reference.sink_mass).max()),
                  float(np.abs(health.importance - reference.importance).max() / np.abs(reference.importance).max())),
              1e-3)

    program = nm.LayerProgram.duplicate(subject.n_layers, 12, 16)
    diff = nm.compare(subject, lambda: subject.program_applied(program), PROMPTS, max_new_tokens=12)
    mismatches = 0
    with subject.program_applied(program):
        for row, prompt in enumerate(PROMPTS):
            encoded = subject.encode(prompt)
            out = subject.model.generate(**encoded, max_new_tokens=12, do_sample=False,
                                         pad_token_id=subject.pad_token_id)[0, encoded["input_ids"].shape[1]:]
            expected = out.tolist()
            eos = set(subject.eos_token_ids)
            cut = next((k + 1 for k, t in enumerate(expected) if t in eos), len(expected))
            got = [t for t in diff.after.tokens[row].tolist() if t >= 0]
            mismatches += got != expected[:cut]
    if dtype == torch.float32:
        check("compare: after-side continuations = HF generate (prompts differing)", mismatches, 0)
    else:  # half-precision greedy depends on batching: HF's own batched and one-prompt generate disagree too
        print(f"  compare: after-side continuations differing from one-prompt HF generate: {mismatches} of "
              f"{len(PROMPTS)} (bfloat16: not checked)")

    before = {name: p.detach().clone() for name, p in subject.model.named_parameters()}
    steps = 10 if args.quick else 30
    text = " ".join(builtin_corpus().texts[:80])
    with timed(f"LoRA fine-tune, rank 8, {steps} steps (4 x 128 tokens each)", times):
        tuned = nm.finetune(subject, text, rank=8, steps=steps, progress=False)
    print(f"    loss {tuned.loss[0]:.3f} -> {tuned.loss[-1]:.3f}")
    with timed("diff_models current vs -adapter (KL, drift, weights, probes)", times):
        nm.diff_models(subject, "current", "-adapter", progress=False)
    nm.remove_adapters(subject)
    changed = sum(not torch.equal(p, before[name]) for name, p in subject.model.named_parameters())
    check("weights bit-identical after removing the adapter (parameters changed)", changed, 0)

    with timed(f"train_sae step 12, 4x, {100 if args.quick else 300} steps", times):
        sae = nm.train_sae(subject, step=12, steps=100 if args.quick else 300, progress=False)
    print(f"    FVU {sae.fvu:.3f}, L0 {sae.l0:.1f}")
    with timed("networks, default corpus and components (FastICA in torch here)", times):
        found = nm.networks(subject, progress=False)
    print(f"    {int(found.key_mask.sum())} key neurons, {found.metadata.get('backend')}")
    rng = np.random.default_rng(0)
    signals = rng.laplace(size=(6000, 8)) @ rng.normal(size=(8, 1024)) + rng.normal(0, 0.1, size=(6000, 1024))
    ours, _, _ = decompose(signals.astype(np.float32), 8, device=args.device)
    reference, _, _ = decompose(signals.astype(np.float32), 8)
    check("FastICA maps in torch on the GPU = scikit-learn's", float(np.abs(ours - reference).max()), 1e-3)

    if args.checks_only:
        return
    print("timings:")
    with timed("patching sweep (resid_pre, 30 layers x every position)", times):
        nm.patch(subject, clean, corrupt, [" Mary", " John"], progress=False)
    with timed("brain scan, math probe (16 items), all 465 configs", times):
        nm.brainscan(subject, progress=False)
    with timed("compare, a repeated click (before side remembered)", times):
        nm.compare(subject, lambda: subject.program_applied(program))
    with timed("scan with logit lens, one prompt", times):
        nm.scan(subject, PROMPTS[0], lens=True, progress=False)

    if args.brainscan_bench:
        del subject
        run_brainscan_bench(args, dtype, overrides)


def run_brainscan_bench(args: argparse.Namespace, dtype: torch.dtype, overrides: dict | None) -> None:
    """``bench/brainscan.py`` on this model (it loads "the default model": that is this one here)."""
    nm.load_model = lambda *a, **k: build(args.model, args.device, dtype, overrides)
    sys.argv = ["bench/brainscan.py", "--device", args.device, "--dtype", args.dtype, *args.bench_args.split()]
    runpy.run_path(str(Path(__file__).parent / "brainscan.py"), run_name="__main__")


if __name__ == "__main__":
    main()
