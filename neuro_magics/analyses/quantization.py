"""Quantization awareness: what rounding the weights to int8 or int4 would cost, simulated.

Every block matrix is rounded symmetrically per output row (absmax scale, ``2^(bits-1) - 1``
levels each side, the scheme of LLM.int8()'s vector-wise quantization without its outlier
split) and stored back in the model's dtype. The rounding is a weight-changing
intervention of kind ``"quantize"``: the result holds each matrix's relative error
``|W - Q(W)| / |W|`` and the before/after diff of the outputs, and the model is left as it was
unless ``install=True`` (then ``reset_interventions(subject, "quantize")`` restores it bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.adapters import weight_matrix
from ..core.errors import NeuroMagicsError
from ..core.offload import refuse_offloaded
from ..core.interventions import Intervention, WeightChange, rebuilder
from ..core.programs import explicit_layer_word, parse_ranges
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock
from .diffing import DEFAULT_NEW_TOKENS, DiffResult, compare
from ..core.matrices import matrix_grid

BITS = (4, 8)


def rounded(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight [out, in]`` rounded to ``bits``-bit symmetric integers per row, scaled back."""
    levels = 2 ** (bits - 1) - 1
    scale = weight.abs().amax(dim=1, keepdim=True).float() / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return ((weight.float() / scale).round().clamp(-levels, levels) * scale).to(weight.dtype)


@rebuilder("quantize")
def _quantization(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    modules = subject.block_matrices()
    chosen = [modules[name] for name in arguments["matrices"] if name in modules]
    if len(chosen) != len(arguments["matrices"]):
        raise NeuroMagicsError("This quantization was made for another model: its matrices are not all here.")

    def apply() -> None:
        for module in chosen:
            weight = weight_matrix(module)
            weight.copy_(rounded(weight, arguments["bits"]))

    return Intervention("quantize", description, arguments, hooks=[], weights=WeightChange([m.weight for m in chosen], apply))


@dataclass(repr=False, eq=False)
class QuantizeResult(Result):
    """Each rounded matrix's relative error, and the diff of what the rounding does to the outputs."""

    kind = "quantize"

    bits: int
    matrices: list[str]
    errors: np.ndarray  # [matrices] |W - Q(W)| / |W|
    diff: DiffResult | None
    metadata: dict[str, Any]

    def error_grid(self) -> tuple[np.ndarray, list[str], list[str]]:
        """The errors as ``[blocks, matrix paths]`` (NaN where absent), with the labels."""
        return matrix_grid(self.matrices, self.errors)

    def to_numpy(self) -> np.ndarray:
        return self.errors

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"matrix": self.matrices, "relative_error": self.errors})

    def __repr__(self) -> str:
        text = f"QuantizeResult(int{self.bits}, {len(self.matrices)} matrices, relative error median {np.median(self.errors):.4f}, max {self.errors.max():.4f}"
        if self.diff is not None:
            text += f"; perplexity {self.diff.before.perplexity:.2f} -> {self.diff.after.perplexity:.2f}"
        return text + ")"

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"errors": self.errors}
        if self.diff is not None:
            arrays.update({f"diff_{k}": v for k, v in self.diff._arrays().items()})
        return arrays

    def _fields(self) -> dict[str, Any]:
        diff = None if self.diff is None else {"fields": self.diff._fields(), "metadata": self.diff.metadata}
        return {"bits": self.bits, "matrices": self.matrices, "diff": diff}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> QuantizeResult:
        saved = fields["diff"]
        diff = None if saved is None else DiffResult._rebuild(
            {k[len("diff_"):]: v for k, v in arrays.items() if k.startswith("diff_")}, saved["fields"], saved["metadata"])
        return cls(int(fields["bits"]), list(fields["matrices"]), arrays["errors"], diff, metadata)


@with_lock
@torch.no_grad()
def quantize(
    subject: Subject,
    bits: int = 8,
    *,
    blocks: str | Sequence[int] | None = None,
    layers: str | Sequence[int] | None = None,
    diff: bool = True,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
    install: bool = False,
) -> QuantizeResult:
    """Simulate rounding the block matrices (of the original ``blocks``, e.g. ``"0-5"``; default
    all; the rounding acts at every step that runs them) to ``bits`` (4 or 8) bits: the weight
    error per matrix and the before/after diff. ``layers`` is the old spelling of ``blocks``,
    accepted only under the identity program. The model
    is left as it was unless ``install``."""
    if bits not in BITS:
        raise NeuroMagicsError(f"bits must be 4 or 8 (got {bits}).")
    refuse_offloaded(subject.model, "Quantizing")
    blocks = explicit_layer_word(subject.program, layers, blocks, old="--layers", new="--blocks")
    blocks = range(subject.n_layers) if blocks is None else (
        parse_ranges(blocks, subject.n_layers) if isinstance(blocks, str) else [int(b) for b in blocks])
    bad = [b for b in blocks if not 0 <= b < subject.n_layers]
    if bad:
        raise NeuroMagicsError(f"Block {bad[0]} is out of range: this model has blocks 0-{subject.n_layers - 1}.")
    chosen = {name: module for name, module in subject.block_matrices().items() if int(name.split(".")[0]) in set(blocks)}
    errors = np.array([float(torch.linalg.matrix_norm((w - rounded(w, bits)).double()) / max(
        float(torch.linalg.matrix_norm(w.double())), 1e-30)) for w in (weight_matrix(m).detach() for m in chosen.values())],
        dtype=np.float32)
    description = f"int{bits} rounding (per row, absmax) of {len(chosen)} block matrices"
    intervention = _quantization(subject, {"bits": bits, "matrices": list(chosen)}, description)
    comparison = None
    if diff:
        comparison = compare(subject, lambda: intervention.applied(subject), prompts, max_new_tokens=max_new_tokens,
                             label_after=f"int{bits}")
    metadata = run_metadata(subject, list(prompts or []), bits=bits, blocks=list(blocks))
    if install:
        intervention.install(subject)
    return QuantizeResult(bits, list(chosen), errors, comparison, metadata)
