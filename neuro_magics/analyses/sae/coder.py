"""The sparse coder: one encode path (pre-activations, then TopK / ReLU / JumpReLU) and one
decode, shared by training, inference, the held-out evaluation and the feature ablation's
hook, so that what is trained is exactly what is read.

``pre = (x - b_dec) W_enc + b_enc`` (``x`` itself when the SAE does not centre its input),
``f = TopK(ReLU(pre))`` (Gao et al. 2024), ``ReLU(pre)`` or JumpReLU ``ReLU(pre) [pre > threshold]``,
``x_hat = f W_dec + b_dec``; ``x`` is in the SAE's scaled units (see ``SparseAutoencoder.scale``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

#: Activation functions an SAE may have.
ACTIVATIONS = ("topk", "relu", "jumprelu")
#: The coder's weights, in the shapes ``W_enc [d, width]``, ``b_enc [width]``, ``W_dec [width, d]``, ``b_dec [d]``.
WEIGHT_NAMES = ("W_enc", "b_enc", "W_dec", "b_dec")


class SparseCoder(torch.nn.Module):
    """The encoder and decoder as torch parameters (trainable for a TopK fit, frozen when read)."""

    def __init__(self, weights: Mapping[str, np.ndarray | torch.Tensor], *, activation: str = "topk",
                 k: int | None = None, center_input: bool = True, threshold: np.ndarray | None = None,
                 device: torch.device | str = "cpu", trainable: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        for name in WEIGHT_NAMES:
            tensor = torch.tensor(np.asarray(weights[name], dtype=np.float32)) if not isinstance(
                weights[name], torch.Tensor) else weights[name].detach().float().clone()
            self.register_parameter(name, torch.nn.Parameter(tensor.to(device), requires_grad=trainable))
        self.register_buffer("threshold", None if threshold is None
                             else torch.tensor(np.asarray(threshold, dtype=np.float32)).to(device))
        self.activation, self.k, self.center_input = activation, k, center_input

    @classmethod
    def initial_topk(cls, d: int, width: int, k: int, *, seed: int, device: torch.device | str) -> SparseCoder:
        """A fresh trainable TopK coder: random unit decoder rows, the encoder tied to them at
        the start (then free), zero biases."""
        generator = torch.Generator().manual_seed(seed)
        decoder = torch.randn(width, d, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        weights = {"W_enc": decoder.T.clone(), "b_enc": torch.zeros(width), "W_dec": decoder, "b_dec": torch.zeros(d)}
        return cls(weights, activation="topk", k=k, device=device, trainable=True)

    @property
    def width(self) -> int:
        return self.W_dec.shape[0]

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - b_dec) W_enc + b_enc`` (``x W_enc + b_enc`` for an SAE that does not centre)."""
        return ((x - self.b_dec) if self.center_input else x) @ self.W_enc + self.b_enc

    def top_k(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The k largest ReLU'd pre-activations per row: ``(values, indices)``, unsorted."""
        return torch.relu(pre).topk(self.k, dim=-1, sorted=False)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Dense feature activations ``[..., width]`` from pre-activations."""
        if self.activation == "topk":
            values, indices = self.top_k(pre)
            return torch.zeros_like(pre).scatter(-1, indices, values)
        if self.activation == "jumprelu":
            return torch.relu(pre) * (pre > self.threshold)
        return torch.relu(pre)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense feature activations ``[..., width]`` of scaled activations ``[..., d]``."""
        return self.activate(self.preactivations(x))

    def decode(self, dense: torch.Tensor) -> torch.Tensor:
        """Scaled activations rebuilt from dense feature activations."""
        return dense @ self.W_dec + self.b_dec

    def decode_sparse(self, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``sum_j values[j] W_dec[indices[j]]`` (no ``b_dec``): only the active rows, never a dense code."""
        return sparse_sum(indices, values, self.W_dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The TopK training pass: reconstruction, the k active ``(indices, values)`` per row, and
        the pre-activations (AuxK reads the dead features' ones)."""
        pre = self.preactivations(x)
        values, indices = self.top_k(pre)
        return self.decode_sparse(indices, values) + self.b_dec, indices, values, pre

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale each decoder row to unit norm (Gao et al.)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def drop_parallel_gradient(self) -> None:
        """Keep the step tangent to the unit sphere of each decoder row (Gao et al.)."""
        if self.W_dec.grad is not None:
            rows = self.W_dec
            self.W_dec.grad -= (self.W_dec.grad * rows).sum(1, keepdim=True) * rows

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as float32 numpy arrays (on the CPU)."""
        return {name: getattr(self, name).detach().float().cpu().numpy() for name in WEIGHT_NAMES}


def sparse_sum(indices: torch.Tensor, values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``sum_j values[..., j] * rows[indices[..., j]]``, by ``embedding_bag`` (no dense code)."""
    return torch.nn.functional.embedding_bag(indices.reshape(-1, indices.shape[-1]), rows,
                                             per_sample_weights=values.reshape(-1, values.shape[-1]),
                                             mode="sum").reshape(*indices.shape[:-1], rows.shape[1])
