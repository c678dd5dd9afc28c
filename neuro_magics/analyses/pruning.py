"""Pruning, reversibly: Wanda and magnitude masks as a weight-changing intervention, and
ShortGPT step removal as a layer program.

- **Wanda** (Sun et al. 2023) scores each weight ``|W_ij| * ||X_j||_2``, the norm of input
  feature ``j`` over every token of a calibration corpus, and removes the lowest-scoring
  fraction of each output row. The norms come from one pass of the model as it is now
  (the dense model; the paper's sequential variant re-measures after each block).
- **Magnitude** removes the smallest ``|W_ij|`` of each output row.
- **Steps** (ShortGPT, Men et al. 2024) drops the ``drop_steps`` steps (positions of the current
  layer program, not blocks: under ``0,1,2,3,2,3,4`` dropping step 5 removes the second run of
  block 3 only) with the lowest Block Influence ``1 - cos(x_s, x_{s+1})`` on the corpus: a layer
  program, zero copies, undone by ``%reset_layers``. ``"layers"`` / ``drop`` are the old
  spellings, accepted only under the identity program, where a step is its block.

A mask is an :class:`~neuro_magics.core.interventions.Intervention` of kind ``"prune"``: the
subject keeps the weights it zeroes aside, ``reset_interventions`` restores them bit for bit,
and ``save_materialized`` writes the pruned model. Its spec holds the method, the sparsity
and (Wanda) the input norms, so a replay prunes the same weights.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.adapters import weight_matrix
from ..core.errors import NeuroMagicsError
from ..core.programs import LayerProgram, explicit_layer_word
from ..core.offload import refuse_offloaded
from ..core.interventions import Intervention, WeightChange, rebuilder
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.runner import Capture, prepare, run
from ..core.subject import Subject, with_lock
from ..core.proxies import proxy_metrics
from ..core.corpus import calibration_batches, calibration_forward, calibration_passages
from ..core.matrices import matrix_grid
from ..core.probe_sets import answer_set_scores
from ..core.programs import dropped as dropped_steps
from ..core.scoring import text_perplexity

METHODS = ("wanda", "magnitude", "steps")


# -- the corpus ---------------------------------------------------------------------------------


def _encoded_passages(subject: Subject, passages: Sequence[str]) -> list[torch.Tensor]:
    """Each passage's token ids [1, T], cut to the model's context."""
    limit = subject.context_length
    return [subject.tokenizer(p, return_tensors="pt")["input_ids"][:, :limit].to(subject.device) for p in passages]


# -- masks --------------------------------------------------------------------------------------


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask ``[out, in]``: in every row, the ``floor(in * sparsity)`` lowest scores are removed."""
    n_removed = int(scores.shape[1] * sparsity)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if n_removed:
        lowest = torch.topk(scores, n_removed, dim=1, largest=False).indices
        keep.scatter_(1, lowest, False)
    return keep


@with_lock
@torch.no_grad()
def input_norms(subject: Subject, modules: dict[str, torch.nn.Module], passages: Sequence[str]) -> dict[str, torch.Tensor]:
    """``||X_j||_2`` per input feature of each module over every token of ``passages`` (batched,
    padding left out; the model as it is now: program and interventions included)."""
    squares: dict[str, torch.Tensor] = {}
    handles = []
    real: list[torch.Tensor] = []  # the running batch's attention mask, as booleans

    for name, module in modules.items():
        def accumulate(module, args, name=name):
            x = args[0].detach()[real[0].to(args[0].device)].float()
            squares[name] = squares.get(name, 0) + (x * x).sum(0)
        handles.append(module.register_forward_pre_hook(accumulate))
    try:
        batches = calibration_batches(subject, passages)
        with ProgressBar(len(batches), "calibrate", "batch", leave=False) as bar:
            for ids, mask in batches:
                real[:] = [mask.bool()]
                calibration_forward(subject, ids, mask)
                bar.update()
    finally:
        for handle in handles:
            handle.remove()
    return {name: value.sqrt() for name, value in squares.items()}


def _pack(vector: torch.Tensor) -> str:
    return base64.b64encode(vector.detach().cpu().float().numpy().astype("<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype="<f4").copy())


def mask_scores(method: str, weight: torch.Tensor, norm: torch.Tensor | None) -> torch.Tensor:
    """The score a mask ranks: ``|W|`` (magnitude) or ``|W| * ||X_j||`` (Wanda), ``[out, in]``."""
    scores = weight.detach().abs().float()
    return scores if method == "magnitude" else scores * norm.to(scores.device)[None, :]


@rebuilder("prune")
def _pruning(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """The mask, from the spec alone: it is computed from the weights when installed."""
    modules = subject.block_matrices()
    missing = [name for name in arguments["matrices"] if name not in modules]
    if missing:
        raise NeuroMagicsError(f"This model has no matrix {missing[0]!r}: the pruning was made for another model.")
    chosen = {name: modules[name] for name in arguments["matrices"]}
    norms = arguments.get("norms")

    def apply() -> None:
        for name, module in chosen.items():
            weight = weight_matrix(module)
            norm = None if norms is None else _unpack(norms[name])
            weight.mul_(row_mask(mask_scores(arguments["method"], weight, norm), arguments["sparsity"]).to(weight.dtype))

    change = WeightChange([module.weight for module in chosen.values()], apply)
    return Intervention("prune", description, arguments, hooks=[], weights=change)


# -- the report ---------------------------------------------------------------------------------


def _nonzero(subject: Subject) -> int:
    """Non-zero parameters of the model as it runs now (a dropped block is not in it)."""
    return int(sum(int(p.count_nonzero()) for p in subject.model.parameters()))


@dataclass(repr=False, eq=False)
class PruneResult(Result):
    """What a pruning did: perplexity and probe scores before and after, parameters, and the
    sparsity of every matrix (``method="steps"``: the Block Influence of every step of the program
    before, the dropped steps and the blocks they ran)."""

    kind = "prune"

    method: str
    sparsity: float | None
    matrices: list[str]
    matrix_sparsity: np.ndarray  # [matrices] fraction of zeros after
    n_parameters: int  # of the model as the program ran before
    nonzero_before: int  # non-zero parameters of the blocks the program runs (and the rest of the model)
    nonzero_after: int
    perplexity_before: float
    perplexity_after: float
    probes_before: dict[str, float]
    probes_after: dict[str, float]
    block_influence: np.ndarray  # [steps] of the program before (method steps), else empty
    dropped_steps: list[int]  # steps of the program before that were dropped (method steps)
    dropped_blocks: list[int]  # the blocks those steps ran
    program_before: str
    program_after: str
    metadata: dict[str, Any]

    @property
    def dropped(self) -> list[int]:
        """``dropped_steps`` where each ran the block of its own index; elsewhere "dropped layers"
        would name steps and blocks at once, so it is refused."""
        if self.dropped_steps != self.dropped_blocks:
            raise NeuroMagicsError(f"dropped is ambiguous: steps {self.dropped_steps} ran blocks {self.dropped_blocks}; "
                                   "use dropped_steps or dropped_blocks.")
        return self.dropped_steps

    @property
    def overall_sparsity(self) -> float:
        """Fraction of the model's parameters that are zero after, minus before (weights removed)."""
        return (self.nonzero_before - self.nonzero_after) / self.n_parameters

    def to_numpy(self) -> np.ndarray:
        return self.block_influence if self.method == "steps" else self.matrix_sparsity

    def sparsity_grid(self) -> tuple[np.ndarray, list[str], list[str]]:
        """The per-matrix sparsity as ``[blocks, matrix paths]`` (NaN where a block has no such
        matrix), with the block and path labels."""
        return matrix_grid(self.matrices, self.matrix_sparsity)

    def to_pandas(self):
        import pandas as pd

        if self.method == "steps":
            blocks = LayerProgram.parse(self.program_before, self.metadata["n_layers"]).steps
            return pd.DataFrame({"step": range(len(self.block_influence)), "block": blocks,
                                 "block_influence": self.block_influence,
                                 "dropped": [k in self.dropped_steps for k in range(len(self.block_influence))]})
        return pd.DataFrame({"matrix": self.matrices, "sparsity": self.matrix_sparsity})

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(measure, before, after) rows, as the widget shows them."""
        rows = [("perplexity", f"{self.perplexity_before:.3f}", f"{self.perplexity_after:.3f}")]
        rows += [(f"{name} probe: mean log p(answer)", f"{self.probes_before[name]:.3f}",
                  f"{self.probes_after[name]:.3f}") for name in self.probes_before]
        rows.append(("non-zero parameters the program runs", f"{self.nonzero_before:,}", f"{self.nonzero_after:,}"))
        rows.append(("program", self.program_before, self.program_after))
        return rows

    def __repr__(self) -> str:
        what = (f"dropped steps {self.dropped_steps} (blocks {self.dropped_blocks})" if self.method == "steps"
                else f"sparsity {self.sparsity} per row of {len(self.matrices)} matrices")
        return (f"PruneResult({self.method}: {what}; perplexity {self.perplexity_before:.2f} -> "
                f"{self.perplexity_after:.2f}; non-zero parameters {self.nonzero_before:,} -> {self.nonzero_after:,})")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"matrix_sparsity": self.matrix_sparsity, "block_influence": self.block_influence}

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "method", "sparsity", "matrices", "n_parameters", "nonzero_before", "nonzero_after", "perplexity_before",
            "perplexity_after", "probes_before", "probes_after", "dropped_steps", "dropped_blocks", "program_before",
            "program_after")}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> PruneResult:
        if "dropped" in fields:  # saved before steps and blocks were named apart (always the identity program)
            fields["dropped_steps"] = fields["dropped_blocks"] = fields.pop("dropped")
            fields["method"] = "steps" if fields["method"] == "layers" else fields["method"]
        return cls(**fields, matrix_sparsity=arrays["matrix_sparsity"], block_influence=arrays["block_influence"],
                   metadata=metadata)


# -- the entry point ----------------------------------------------------------------------------


@with_lock
@torch.no_grad()
def block_influence(subject: Subject, passages: Sequence[str]) -> np.ndarray:
    """Block Influence ``1 - cos(x_l, x_{l+1})`` of each step of the current program, averaged
    over every token of ``passages``."""
    total, n_tokens = 0.0, 0
    for ids in _encoded_passages(subject, passages):
        inputs = prepare(subject, ids)
        out = run(subject, inputs, capture=Capture(sites=("resid_pre",), device=subject.device), logits_at=None)
        states = torch.cat([out.captures["resid_pre"], out.resid[None]])
        influence, _ = proxy_metrics(states, inputs.attention_mask)
        total, n_tokens = total + influence * ids.shape[1], n_tokens + ids.shape[1]
    return total / n_tokens


@with_lock
def prune(
    subject: Subject,
    method: str = "wanda",
    sparsity: float | None = None,
    *,
    drop_steps: int | None = None,
    drop: int | None = None,
    corpus: str = "builtin",
    install: bool = True,
) -> PruneResult:
    """Prune the subject and report perplexity, probe scores and parameters before and after.

    ``wanda`` / ``magnitude``: remove ``sparsity`` (0 < s < 1, default 0.5) of each output row of every
    block matrix; undo with ``nm.reset_interventions(subject, "prune")``. ``steps``: drop the
    ``drop_steps`` steps (positions of the current program, not blocks) of lowest Block
    Influence; undo with ``subject.reset()`` (``%reset_layers``). ``"layers"`` and ``drop`` are
    the old spellings of ``"steps"`` and ``drop_steps``, accepted only under the identity program. ``corpus``
    is ``"builtin"`` or a text file (Wanda's norms, Block Influence). With ``install=False``
    the model is measured pruned and left as it was.
    """
    if method not in (*METHODS, "layers"):
        raise NeuroMagicsError(f"Unknown pruning method {method!r}: use wanda, magnitude or steps.")
    if method == "layers":
        method = explicit_layer_word(subject.program, "steps", None, old="--method layers", new="--method steps")
    if method == "steps":
        drop = explicit_layer_word(subject.program, drop, drop_steps, old="--drop", new="--drop-steps")
        if sparsity is not None:
            raise NeuroMagicsError("--sparsity is for wanda and magnitude; --method steps removes whole steps: "
                                   "give --drop-steps N instead.")
        if drop is None or isinstance(drop, bool) or not isinstance(drop, int) or not 1 <= drop < len(subject.program):
            raise NeuroMagicsError(f"--method steps needs --drop-steps N with 1 <= N < {len(subject.program)} "
                                   f"(the current program's steps; got {drop}).")
    else:
        if drop is not None or drop_steps is not None:
            raise NeuroMagicsError("--drop-steps is for --method steps; wanda and magnitude take --sparsity.")
        sparsity = 0.5 if sparsity is None else sparsity
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 < sparsity < 1:
            raise NeuroMagicsError(f"--sparsity must be a fraction strictly between 0 and 1, e.g. 0.5 (got {sparsity}).")
        refuse_offloaded(subject.model, f"Pruning ({method})")
    passages = calibration_passages(corpus) if method != "magnitude" else []
    if subject.tokenizer is None:
        raise NeuroMagicsError("Pruning reports perplexity and probe scores: the subject needs a tokenizer.")

    program_before, n_parameters = subject.program, sum(p.numel() for p in subject.model.parameters())
    nonzero_before, perplexity_before = _nonzero(subject), text_perplexity(subject)
    probes_before = answer_set_scores(subject)
    modules = subject.block_matrices()
    influence, dropped, intervention = np.zeros(0), [], None
    if method == "steps":
        influence = block_influence(subject, passages)
        dropped = sorted(int(k) for k in np.argsort(influence, kind="stable")[:drop])

        change = lambda: subject.program_applied(dropped_steps(subject.program, dropped))  # noqa: E731
    else:
        norms = None
        if method == "wanda":
            norms = {name: _pack(value) for name, value in input_norms(subject, modules, passages).items()}
        description = f"{method} {sparsity:g} per output row of {len(modules)} block matrices"
        arguments = {"method": method, "sparsity": float(sparsity), "matrices": list(modules), "norms": norms,
                     "corpus": corpus}
        intervention = _pruning(subject, arguments, description)
        change = lambda: intervention.applied(subject)  # noqa: E731
    with change():
        program_after = subject.program
        sparsities = np.array([float((weight_matrix(m) == 0).float().mean()) for m in modules.values()], dtype=np.float32)
        nonzero_after, perplexity_after = _nonzero(subject), text_perplexity(subject)
        probes_after = answer_set_scores(subject)
        metadata = run_metadata(subject, method=method, sparsity=sparsity, drop_steps=drop, corpus=corpus)
    if install:
        if intervention is not None:
            intervention.install(subject)
        else:
            subject.set_program(program_after)
    return PruneResult(
        method=method, sparsity=None if method == "steps" else float(sparsity), matrices=list(modules),
        matrix_sparsity=sparsities, n_parameters=n_parameters,
        nonzero_before=nonzero_before, nonzero_after=nonzero_after, perplexity_before=perplexity_before,
        perplexity_after=perplexity_after, probes_before=probes_before, probes_after=probes_after,
        block_influence=np.asarray(influence, dtype=np.float64), dropped_steps=dropped,
        dropped_blocks=[program_before.steps[k] for k in dropped], program_before=str(program_before),
        program_after=str(program_after), metadata=metadata,
    )
