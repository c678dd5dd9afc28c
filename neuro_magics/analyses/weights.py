"""Weight views: what each attention head and MLP holds, read from the weights alone.

Per block and head: the Frobenius norms and singular values of its query, key, value and
output matrices, and of its two circuits (Elhage et al. 2021): OV = ``W_O^h W_V^h``
(``d_model x d_model``, what the head writes for what it reads) and QK = ``W_Q^h^T W_K^h``
(which residual directions attend to which). Per block: the MLP matrices' norms. Biases and
the norms' scales are left out: these are the raw matrices. A grouped-query head uses the
key and value matrices of its group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.adapters import linear_modules
from ..core.matrices import attention_matrices
from ..core.offload import weight_value
from ..core.progress import ProgressBar
from ..core.results import Result, run_metadata
from ..core.subject import Subject, with_lock

MATRICES = ("Q", "K", "V", "O", "OV", "QK")


def _circuit_core(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """A ``[hd, hd]`` matrix with the same singular values (and norm) as ``left @ right``
    (``[heads, d, hd] @ [heads, hd, d]``): with ``left = Q1 R1`` and ``right^T = Q2 R2``,
    ``left @ right = Q1 (R1 R2^T) Q2^T``. A d x d SVD per head would take a minute."""
    return torch.linalg.qr(left).R @ torch.linalg.qr(right.transpose(1, 2)).R.transpose(1, 2)


@dataclass(repr=False, eq=False)
class WeightsResult(Result):
    """Norms ``[blocks, heads, matrices]`` and spectra ``[blocks, heads, matrices, head_dim]`` of
    each head's Q, K, V, O, OV and QK, and MLP norms ``[blocks, mlp matrices]``."""

    kind = "weights"

    norms: np.ndarray
    spectra: np.ndarray
    mlp_norms: np.ndarray
    mlp_names: list[str]
    metadata: dict[str, Any]

    @property
    def n_layers(self) -> int:
        return self.norms.shape[0]

    @property
    def n_heads(self) -> int:
        return self.norms.shape[1]

    def norm(self, matrix: str) -> np.ndarray:
        """``[blocks, heads]`` Frobenius norms of one of ``MATRICES``."""
        return self.norms[:, :, MATRICES.index(matrix)]

    def to_numpy(self) -> np.ndarray:
        return self.norms

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame([
            {"block": b, "head": h, "matrix": m, "norm": float(self.norms[b, h, k]),
             "top_singular_value": float(self.spectra[b, h, k, 0])}
            for b in range(self.n_layers) for h in range(self.n_heads) for k, m in enumerate(MATRICES)])

    def __repr__(self) -> str:
        ov = self.norm("OV")
        b, h = np.unravel_index(np.argmax(ov), ov.shape)
        return (f"WeightsResult({self.n_layers} blocks x {self.n_heads} heads; largest OV circuit norm "
                f"{ov[b, h]:.3g} at head {b}.{h})")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"norms": self.norms, "spectra": self.spectra, "mlp_norms": self.mlp_norms}

    def _fields(self) -> dict[str, Any]:
        return {"mlp_names": self.mlp_names}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> WeightsResult:
        return cls(arrays["norms"], arrays["spectra"], arrays["mlp_norms"], list(fields["mlp_names"]), metadata)


@with_lock
@torch.no_grad()
def weight_views(subject: Subject) -> WeightsResult:
    """Norms and singular spectra of every head's matrices and circuits, and MLP norms, of the
    original blocks as their weights are now (edits and pruning included)."""
    n, kv, hd = subject.n_heads, subject.n_kv_heads, subject.head_dim
    group = n // kv
    norms = np.zeros((subject.n_layers, n, len(MATRICES)), dtype=np.float32)
    spectra = np.zeros((subject.n_layers, n, len(MATRICES), hd), dtype=np.float32)
    mlp_path = subject.adapter.neurons.rsplit(".", 1)[0]  # the MLP holding the down projection
    mlp_names = list(linear_modules(subject.adapter.submodule(subject.blocks[0], mlp_path)))
    mlp_norms = np.zeros((subject.n_layers, len(mlp_names)), dtype=np.float32)
    with ProgressBar(subject.n_layers, "weights", "block", leave=False) as bar:
        for block in range(subject.n_layers):
            q, k, v, o = (m.double() for m in attention_matrices(subject, block))
            k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
            matrices = (q, k, v, o, _circuit_core(o, v), _circuit_core(q.transpose(1, 2), k))
            for index, matrix in enumerate(matrices):
                norms[block, :, index] = torch.linalg.matrix_norm(matrix).cpu().numpy()
                spectra[block, :, index] = torch.linalg.svdvals(matrix)[..., :hd].cpu().numpy()
            modules = linear_modules(subject.adapter.submodule(subject.blocks[block], mlp_path))
            mlp_norms[block] = [float(torch.linalg.matrix_norm(weight_value(modules[name]).double()))
                                for name in mlp_names]
            bar.update()
    return WeightsResult(norms, spectra, mlp_norms, mlp_names, run_metadata(subject))
