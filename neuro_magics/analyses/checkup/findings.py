"""Findings: what the checkup reads off its arrays, each with where it is and what to try."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .config import (ALPHA_RANGE, DEAD_HEAD_FRACTION, DEAD_NEURON_FRACTION, LENS_AGREEMENT, LENS_POSITIONS,
                     MASSIVE_ABSOLUTE, MASSIVE_RATIO, REDUNDANT_COSINE, SATURATED_SPREAD, SEVERITIES, SINK_MASS)


@dataclass(frozen=True)
class Finding:
    """One thing the checkup found: where it is, which array shows it, and what to try."""

    severity: str  # "high", "medium" or "info"
    kind: str  # "massive_activation", "attention_sink", "dead_head", ...
    title: str
    explanation: str
    view: str  # the CheckupResult array that shows it
    step: int | None = None  # position in the layer program (the row of a per-step array)
    block: int | None = None  # the original block run there (the row of ``alpha``)
    head: int | None = None
    token: int | None = None  # position in the text
    dim: int | None = None
    value: float | None = None
    action: dict[str, Any] | None = None  # what ``CheckupResult.apply`` installs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], program_steps: list[int]) -> Finding:
        """A finding as ``to_dict`` wrote it; one saved before steps and blocks were told apart has
        ``layer``: a program step, except in the weight spectra (``alpha``), whose rows are blocks."""
        data = dict(data)
        if "layer" in data:
            layer = data.pop("layer")
            if data["view"] == "alpha":
                data["block"] = layer
            else:
                data["step"] = layer
                data["block"] = None if layer is None else program_steps[layer]
        return cls(**data)


def at(step: int, steps: list[int]) -> str:
    """``"step 4 (block 2)"``: where a per-step finding is, in both words."""
    return f"step {step} (block {steps[step]})"


def read_findings(arrays: dict[str, np.ndarray], names: list[str], steps: list[int], massive: dict) -> list[Finding]:
    """Findings by severity (high, medium, info), each read off one array."""
    findings = _massive_findings(steps, massive)
    sink, entropy, importance = arrays["sink_mass"], arrays["entropy"], arrays["importance"]
    sinks = sorted(zip(*np.nonzero(sink > SINK_MASS)), key=lambda pair: -sink[pair])
    if sinks:
        step, head = sinks[0]
        strongest = ", ".join(f"head {b} at {at(a, steps)} {sink[a, b]:.0%}" for a, b in sinks[:4])
        findings.append(Finding(
            "medium", "attention_sink",
            f"Attention sink: {len(sinks)} of {sink.size} heads put over {SINK_MASS:.0%} on the first token",
            f"Strongest: {strongest} (the first's entropy {entropy[step, head]:.2f} nats); trained models park "
            "attention they do not need on the first token (Xiao et al. 2023), usually where a massive activation sits.",
            "sink_mass", step=int(step), block=steps[step], head=int(head), token=0, value=float(sink[step, head]),
            action={"kind": "ablate_heads", "heads": [[steps[step], int(head)]]}))
    median_importance = float(np.median(importance))
    for step, head in zip(*np.nonzero(importance <= DEAD_HEAD_FRACTION * median_importance)):
        findings.append(Finding(
            "medium", "dead_head", f"Dead head {head} at {at(step, steps)}: the loss does not depend on it",
            f"|dL/d gate| of head {head} at {at(step, steps)} is {importance[step, head]:.2g}, under "
            f"{DEAD_HEAD_FRACTION:g}x the median head's {median_importance:.2g} (Michel et al. 2019).",
            "importance", step=int(step), block=steps[step], head=int(head), value=float(importance[step, head]),
            action={"kind": "ablate_heads", "heads": [[steps[step], int(head)]]}))
    cosine = arrays["head_cosine"]
    for step in range(cosine.shape[0]):
        for a, b in zip(*np.nonzero(np.triu(cosine[step], k=1) > REDUNDANT_COSINE)):
            findings.append(Finding(
                "medium", "redundant_heads",
                f"Redundant heads {a} and {b} at {at(step, steps)}: cosine {cosine[step, a, b]:.3f}",
                f"What heads {a} and {b} at {at(step, steps)} write into the residual stream points the same way over the "
                f"corpus (cosine > {REDUNDANT_COSINE:g}): one may be enough.",
                "head_cosine", step=int(step), block=steps[step], head=int(b), value=float(cosine[step, a, b]),
                action={"kind": "ablate_heads", "heads": [[steps[step], int(b)]]}))
    neuron_max = arrays["neuron_max"]
    for step in range(neuron_max.shape[0]):
        typical = float(np.median(neuron_max[step]))
        dead = np.nonzero(neuron_max[step] <= DEAD_NEURON_FRACTION * typical)[0]
        if dead.size:
            share = dead.size / neuron_max.shape[1]
            listed = ",".join(map(str, dead[:8])) + ("..." if dead.size > 8 else "")
            findings.append(Finding(
                "high" if share > 0.1 else "medium", "dead_neurons",
                f"{dead.size} dead MLP neuron{'s' if dead.size > 1 else ''} at {at(step, steps)}: {listed}",
                f"max |activation| over the corpus is under {DEAD_NEURON_FRACTION:g}x the median neuron's there "
                f"({typical:.3g}): {share:.1%} of the neurons at {at(step, steps)} never fire.",
                "neuron_max", step=int(step), block=steps[step], dim=int(dead[0]), value=float(neuron_max[step, dead[0]]),
                action={"kind": "ablate_neurons", "neurons": [[steps[step], int(d)] for d in dead]}))
    findings += _saturated_neurons(arrays, steps)
    findings += info_findings(arrays, names, steps)
    order = {s: k for k, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: order[f.severity])


def _saturated_neurons(arrays: dict[str, np.ndarray], steps: list[int]) -> list[Finding]:
    """Per step, the neurons stuck at one strong value on every token."""
    findings = []
    mean, spread = np.abs(arrays["neuron_mean"]), arrays["neuron_std"]
    for step in range(mean.shape[0]):
        typical = float(np.median(np.sqrt(mean[step] ** 2 + spread[step] ** 2)))  # median RMS
        stuck = np.nonzero((spread[step] < SATURATED_SPREAD * mean[step]) & (mean[step] >= typical)
                           & (mean[step] > 0))[0]
        if not stuck.size:
            continue
        listed = ",".join(map(str, stuck[:8])) + ("..." if stuck.size > 8 else "")
        first = int(stuck[0])
        findings.append(Finding(
            "medium", "saturated_neurons",
            f"{stuck.size} saturated MLP neuron{'s' if stuck.size > 1 else ''} at {at(step, steps)}: {listed}",
            f"Neuron {first} at {at(step, steps)} is {arrays['neuron_mean'][step, first]:.3g} on every token (spread "
            f"{spread[step, first]:.2g}, under {SATURATED_SPREAD:g}x its mean; the typical neuron there: RMS "
            f"{typical:.3g}): it tells the model nothing about the token, a bias in disguise.",
            "neuron_max", step=int(step), block=steps[step], dim=first, value=float(arrays["neuron_mean"][step, first]),
            action={"kind": "ablate_neurons", "neurons": [[steps[step], int(d)] for d in stuck]}))
    return findings


def info_findings(arrays: dict[str, np.ndarray], names: list[str], steps: list[int]) -> list[Finding]:
    """Residual growth, the least influential step, where the lens settles, odd spectra (per block)."""
    findings = []
    norm, first = arrays["resid_norm"], arrays["first_norm"]
    findings.append(Finding(
        "info", "residual_growth", f"Residual norm grows {norm[-1] / max(norm[0], 1e-30):.1f}x over depth",
        f"Mean ||h|| (first token left out) goes from {norm[0]:.3g} after step 0 to {norm[-1]:.3g} after the last; "
        f"the first token's peaks at {first.max():.3g}.", "resid_norm", value=float(norm[-1] / max(norm[0], 1e-30))))
    influence = arrays["block_influence"]
    low = int(np.argmin(influence))
    findings.append(Finding(
        "info", "block_influence",
        f"{at(low, steps)[0].upper()}{at(low, steps)[1:]} changes the stream least (Block Influence {influence[low]:.3f})",
        "Block Influence 1 - cos(x_in, x_out) averaged over tokens (Men et al. 2024): the steps that change it "
        "least are the first candidates to drop.", "block_influence", step=low, block=steps[low],
        value=float(influence[low])))
    agreement = arrays["lens_agreement"]
    above = agreement >= LENS_AGREEMENT
    settled = next((k for k in range(len(above)) if above[k:].all()), len(above) - 1)
    findings.append(Finding(
        "info", "logit_lens", f"The logit lens settles at {at(settled, steps)} of {len(above)} steps",
        f"From step {settled} on, the logit lens's top token agrees with the output's on at least "
        f"{LENS_AGREEMENT:.0%} of the last {LENS_POSITIONS} positions of each text.", "lens_agreement",
        step=settled, block=steps[settled], value=float(agreement[settled])))
    alpha = arrays["alpha"]
    if alpha.size:
        outside = ~np.isnan(alpha) & ((alpha < ALPHA_RANGE[0]) | (alpha > ALPHA_RANGE[1]))
        for m, name in enumerate(names):
            blocks = np.nonzero(outside[:, m])[0]
            if blocks.size:
                findings.append(Finding(
                    "info", "weight_spectrum",
                    f"{name}: power-law alpha outside [{ALPHA_RANGE[0]:g}, {ALPHA_RANGE[1]:g}] in {blocks.size} blocks",
                    f"alpha of the eigenvalues of W^T W (WeightWatcher's fit) is {np.nanmedian(alpha[blocks, m]):.2f} "
                    f"(median there); under 2 is over-fitted heavy-tailed, over 6 is little-trained or random.",
                    "alpha", block=int(blocks[0]), value=float(alpha[blocks[0], m])))
    return findings


def _massive_findings(steps: list[int], massive: dict) -> list[Finding]:
    """One finding per massive dim: the steps it spans, its peak, the positions and tokens."""
    by_dim: dict[int, list[int]] = {}
    for step, dim in massive:
        by_dim.setdefault(dim, []).append(step)
    findings = []
    for dim, found_steps in sorted(by_dim.items(), key=lambda item: -max(massive[(s, item[0])]["max"] for s in item[1])):
        found_steps.sort()
        peak_step = max(found_steps, key=lambda s: massive[(s, dim)]["max"])
        peak = massive[(peak_step, dim)]
        positions = sorted(peak["positions"].items(), key=lambda item: -item[1])
        pieces = sorted(peak["pieces"].items(), key=lambda item: -item[1])[:3]
        position = positions[0][0]
        blocks = [{"block": steps[s], "dims": [dim], "threshold": massive[(s, dim)]["threshold"],
                   "means": [massive[(s, dim)]["sum"] / massive[(s, dim)]["count"]]} for s in found_steps]
        # a block run twice keeps one entry (the hook acts at both occurrences)
        unique = {entry["block"]: entry for entry in blocks}
        blocks_run = sorted(unique)
        span = (f"steps {found_steps[0]}-{found_steps[-1]}" if len(found_steps) > 1 else f"step {found_steps[0]}") + (
            f" (block{'s' if len(blocks_run) > 1 else ''} {','.join(map(str, blocks_run))})")
        findings.append(Finding(
            "medium", "massive_activation",
            f"Massive activation: dim {dim}, {span}, |h| up to {peak['max']:.0f}",
            f"Residual dim {dim} reaches {peak['max']:.0f} at {at(peak_step, steps)} (position {position}, tokens "
            f"{', '.join(repr(p) for p, _ in pieces)}), over {MASSIVE_ABSOLUTE:g} and {MASSIVE_RATIO:g}x the step's "
            "median |h| (Sun et al. 2024): a fixed bias the model computes, often paired with an attention sink.",
            "resid_max", step=int(peak_step), block=steps[peak_step], token=int(position), dim=int(dim), value=float(peak["max"]),
            action={"kind": "massive", "mode": "mean", "blocks": list(unique.values())}))
    return findings
