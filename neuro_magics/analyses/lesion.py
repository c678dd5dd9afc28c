"""The lesion experiment: does masking a model's functional networks hurt more than chance?

After arXiv 2502.20408: score a probe set with the model as it is (baseline), with the
networks' neurons zeroed, with random masks of the same size in every layer (several seeds:
the control), and with everything but the networks zeroed in the layers they were found in
(keep-only). If the networks matter, masking them costs far more than the random masks.

Key neurons are found by how they co-vary, but they also tend to carry more of the MLP
output's energy than a random neuron, so a random mask of the same count removes less
signal. The energy-matched control (our addition to the paper's design) draws, for each
masked neuron, a random other neuron of the same layer with nearly the same energy rank:
if the networks still hurt more than that, the gap is not magnitude alone.

Each condition is an ordinary ablation intervention (``mask_mlp_dims``), applied only while
it is scored; the scores use the brain scan's probe sets and scorers (``probe_sets``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.errors import NeuroMagicsError
from ..core.interventions import Intervention
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import prepare, run, unembed
from ..core.subject import Subject, with_lock
from .interventions import mask_mlp_dims, mask_network
from .networks import NetworksResult
from ..core.probe_sets import (
    StopAtAnswerEnd,
    answer_logprobs,
    credit,
    load_probe,
    prompt_batch,
    teacher_forced_batch,
)

SCORE_MODES = ("logprob", "generate")
#: The condition groups, in the order they are scored and drawn.
GROUPS = ("baseline", "masked", "random", "energy-matched", "keep-only")
#: The energy-matched control draws each neuron's stand-in among the others of its layer whose
#: energy rank is within this share of the layer's width (at least ``MIN_CANDIDATES`` of them).
ENERGY_WINDOW = 0.05
MIN_CANDIDATES = 8


def random_dims_like(dims: Mapping[int, Sequence[int]], width: int, seed: int) -> dict[int, list[int]]:
    """As many dimensions per layer as ``dims`` has, drawn at random from the others of that
    layer (from all of them where too few others are left), so the control never touches a
    network neuron when it can avoid it."""
    generator = np.random.default_rng(seed)
    drawn = {}
    for layer, chosen in dims.items():
        others = np.setdiff1d(np.arange(width), chosen)
        pool = others if len(others) >= len(chosen) else np.arange(width)
        drawn[layer] = sorted(generator.choice(pool, size=len(chosen), replace=False).tolist())
    return drawn


def energy_matched_dims_like(dims: Mapping[int, Sequence[int]], energy: Mapping[int, np.ndarray],
                             seed: int) -> dict[int, list[int]]:
    """Per layer, one stand-in for each of ``dims``: a random other (not chosen) neuron of that
    layer among those nearest to it in energy rank (``ENERGY_WINDOW`` of the width, at least
    ``MIN_CANDIDATES``), each used once. The drawn set matches the chosen one in count and,
    closely, in energy."""
    generator = np.random.default_rng(seed)
    drawn = {}
    for layer, chosen in dims.items():
        layer_energy = np.asarray(energy[layer], dtype=np.float64)
        width = len(layer_energy)
        rank = np.empty(width, dtype=np.int64)
        rank[np.argsort(layer_energy, kind="stable")] = np.arange(width)
        free = np.ones(width, dtype=bool)
        if width - len(chosen) >= len(chosen):  # never a network neuron, while the others suffice
            free[list(chosen)] = False
        want = max(MIN_CANDIDATES, int(round(ENERGY_WINDOW * width)))
        picks = []
        for neuron in sorted(chosen, key=lambda n: -layer_energy[n]):  # the rarest (strongest) first
            candidates = np.flatnonzero(free)
            nearest = candidates[np.argsort(np.abs(rank[candidates] - rank[neuron]), kind="stable")[:want]]
            pick = int(generator.choice(nearest))
            free[pick] = False
            picks.append(pick)
        drawn[layer] = sorted(picks)
    return drawn


@dataclass(repr=False, eq=False)
class LesionResult(Result):
    """Per condition and item, the probe score; its repr is the lesion chart."""

    kind = "network_lesion"

    conditions: list[str]  # e.g. "baseline", "key masked", "random seed 0", "keep-only key"
    groups: list[str]  # per condition, one of GROUPS
    sizes: list[int]  # per condition, the MLP-output dimensions masked (kept, for keep-only)
    scores: np.ndarray  # [conditions, items] float64
    prompts: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def means(self) -> np.ndarray:
        """[conditions] mean score over the items."""
        return self.scores.mean(axis=1)

    def table(self):
        """One row per group: mean score (over seeds, for the random control), its spread over
        seeds, the change from baseline, and the dimensions masked."""
        import pandas as pd

        means, groups = self.means, np.asarray(self.groups)
        baseline = float(means[groups == "baseline"][0])
        rows = []
        for group in GROUPS:
            picked = groups == group
            if not picked.any():
                continue
            values = means[picked]
            names = {"random": f"random, same count per layer ({picked.sum()} seeds)",
                     "energy-matched": f"random, same count and energy per layer ({picked.sum()} seeds)"}
            rows.append({"condition": names.get(group, self.conditions[int(np.flatnonzero(picked)[0])]),
                         "score": float(values.mean()), "spread_over_seeds": float(values.std()) if picked.sum() > 1
                         else 0.0, "change": float(values.mean()) - baseline,
                         "dims": int(np.asarray(self.sizes)[picked][0])})
        return pd.DataFrame(rows)

    def to_numpy(self) -> np.ndarray:
        return self.scores

    def to_pandas(self):
        """Tidy: one row per condition and item."""
        import pandas as pd

        return pd.DataFrame([
            {"condition": condition, "group": group, "dims": size, "item": k, "prompt": prompt,
             "score": float(self.scores[c, k])}
            for c, (condition, group, size) in enumerate(zip(self.conditions, self.groups, self.sizes))
            for k, prompt in enumerate(self.prompts)
        ])

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores}

    def _fields(self) -> dict[str, Any]:
        return {"conditions": self.conditions, "groups": self.groups, "sizes": self.sizes, "prompts": self.prompts}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> LesionResult:
        return cls(list(fields["conditions"]), list(fields["groups"]), [int(s) for s in fields["sizes"]],
                   arrays["scores"], list(fields["prompts"]), metadata)

    def __repr__(self) -> str:
        table = self.table()
        unit = "mean answer log-prob" if self.metadata.get("score") == "logprob" else "mean credit"
        lines = [f"LesionResult on probe {self.metadata.get('probe', '?')} ({len(self.prompts)} items, {unit}):"]
        for row in table.itertuples():
            spread = f" ± {row.spread_over_seeds:.3f}" if row.spread_over_seeds else ""
            lines.append(f"  {row.condition:<45} {row.score:8.3f}{spread}  ({row.change:+.3f}; {row.dims} dims)")
        return "\n".join(lines)


@with_lock
def network_lesion(
    subject: Subject,
    networks: NetworksResult,
    probe: str = "facts",
    *,
    network: int | Sequence[int] | str = "key",
    seeds: int = 5,
    score: str = "logprob",
    items: str | Sequence[Mapping] | None = None,
    limit: int | None = None,
    max_new_tokens: int = 32,
    keep_only: bool = True,
    energy_matched: bool = True,
    progress: bool = True,
) -> LesionResult:
    """Score ``probe`` (``facts``, ``math``, ``text`` or a ``.jsonl`` path; ``items`` brings
    your own) on ``subject`` as it is, with ``network``'s neurons (``"key"``: all networks)
    zeroed, with ``seeds`` random masks of the same count per layer, (``energy_matched``) with
    ``seeds`` random masks matched in count and energy per layer (networks found by this
    version), and (``keep_only``) with only the networks' neurons left in the layers they
    were found in.

    ``score``: ``logprob`` (mean log-probability of the teacher-forced answer) or ``generate``
    (greedy answer, graded by the item's scorer). The model is left as it was."""
    if score not in SCORE_MODES:
        raise NeuroMagicsError(f"Unknown score {score!r}: use logprob or generate.")
    if seeds < 1:
        raise NeuroMagicsError(f"--seeds must be at least 1 (got {seeds}).")
    probe_set = load_probe(probe, items, limit)
    if score == "generate" and probe_set.is_text:
        raise NeuroMagicsError("Text passages are scored by their likelihood: use score logprob with the text probe.")
    masked = mask_network(subject, networks, network, install=False)
    dims = networks.dims_by_block(network)
    name = "key" if isinstance(network, str) and network.strip() == "key" else f"network {network}"
    size = sum(len(d) for d in dims.values())
    conditions: list[tuple[str, str, int, Intervention | None]] = [
        ("baseline", "baseline", 0, None), (f"{name} masked", "masked", size, masked)]
    for seed in range(seeds):
        drawn = random_dims_like(dims, subject.d_model, seed)
        conditions.append((f"random seed {seed}", "random", size,
                           mask_mlp_dims(subject, drawn, label=f"random dims like {name} (seed {seed})", install=False)))
    if energy_matched and networks.energy is not None:
        energy = dict(zip(networks.blocks, networks.energy))
        for seed in range(seeds):
            drawn = energy_matched_dims_like(dims, energy, seed)
            conditions.append((f"energy-matched seed {seed}", "energy-matched", size, mask_mlp_dims(
                subject, drawn, label=f"random dims like {name}, energy-matched (seed {seed})", install=False)))
    if keep_only:
        conditions.append((f"keep-only {name}", "keep-only", size,
                           mask_network(subject, networks, network, mode="keep-only", install=False)))
    scorer = _logprob_scorer(subject, probe_set) if score == "logprob" else \
        _generate_scorer(subject, probe_set, max_new_tokens)
    metadata = run_metadata(subject, probe_set.prompts, probe=probe_set.name, score=score, network=str(network),
                            seeds=seeds, networks_threshold=networks.threshold, networks_blocks=networks.blocks,
                            networks_model=networks.metadata.get("model"), items=probe_set.records(),
                            conditions=[None if c[3] is None else c[3].spec for c in conditions])
    scores = np.full((len(conditions), len(probe_set.items)), np.nan)
    with ProgressBar(len(conditions), "network lesion", "condition", enabled=progress) as bar:
        for row, (_, _, _, intervention) in enumerate(conditions):
            if intervention is None:
                scores[row] = scorer()
            else:
                with intervention.applied(subject):
                    scores[row] = scorer()
            bar.update()
    return LesionResult([c[0] for c in conditions], [c[1] for c in conditions], [c[2] for c in conditions],
                        scores, probe_set.prompts, metadata)


def _logprob_scorer(subject: Subject, probe_set):
    """Mean answer log-prob per item under whatever is installed: one runner pass over the
    batch (the embeddings and block inputs recorded once), logits only at the answers."""
    batch = teacher_forced_batch(subject, probe_set)
    inputs = prepare(subject, batch.input_ids, batch.attention_mask)

    @torch.no_grad()
    def score() -> np.ndarray:
        resid = run(subject, inputs, logits_at=None).resid
        logits = unembed(subject, resid, batch.positions)
        return answer_logprobs(logits, batch.targets, batch.valid).double().cpu().numpy()

    return score


def _generate_scorer(subject: Subject, probe_set, max_new_tokens: int):
    """Greedy answers (HF generate, KV cache on) graded per item."""
    from transformers import StoppingCriteriaList

    prompts = prompt_batch(subject, probe_set, max_new_tokens)
    width = prompts["input_ids"].shape[1]

    @torch.no_grad()
    def score() -> np.ndarray:
        output = subject.model.generate(
            **prompts, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=subject.pad_token_id,
            stopping_criteria=StoppingCriteriaList([StopAtAnswerEnd(subject, width)]))
        texts = subject.tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
        return np.array([credit(item, text) for item, text in zip(probe_set.items, texts)], dtype=np.float64)

    return score
