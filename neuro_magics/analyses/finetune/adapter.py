"""The adapter itself: a LoRA's A and B per module, its scaling, and its folder."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...core.adapters import weight_matrix
from ...core.errors import NeuroMagicsError
from ...core.files import replacing_folder
from ...core.paths import check_folder_target, user_path
from ...core.subject import Subject
from .files import WEIGHTS_FILE, cached_folder, read_peft_folder, weights_sha256, write_peft_folder
from .targets import target_blocks


@dataclass(eq=False)
class LoraAdapter:
    """LoRA weights for some linear modules of a model's blocks, named ``"<block>.<path>"``
    (e.g. ``"3.self_attn.q_proj"``): ``A[name]`` is ``[rank, in]``, ``B[name]`` is ``[out, rank]``."""

    rank: int
    alpha: float
    A: dict[str, torch.Tensor]
    B: dict[str, torch.Tensor]
    dropout: float = 0.0
    use_rslora: bool = False
    steps: int = 0
    interrupted: bool = False
    base_model: str = ""
    path: Path | None = field(default=None, repr=False)  # the folder it lives in
    sha256: str | None = field(default=None, repr=False)  # of its weights file

    @property
    def scaling(self) -> float:
        """peft's: ``alpha / rank`` (rsLoRA: ``alpha / sqrt(rank)``)."""
        return self.alpha / (math.sqrt(self.rank) if self.use_rslora else self.rank)

    @property
    def targets(self) -> list[str]:
        return list(self.A)

    @property
    def blocks(self) -> list[int]:
        """The original blocks (not program steps) it adapts: under a layer program the adapter
        acts at every step that runs one of them."""
        return target_blocks(self.targets)

    def delta(self, name: str) -> torch.Tensor:
        """The update ``scaling * B @ A`` of one module's weight, ``[out, in]``."""
        return self.scaling * (self.B[name] @ self.A[name])

    def describe(self) -> str:
        paths = sorted({name.split(".", 1)[1].rsplit(".", 1)[-1] for name in self.targets})
        stopped = ", interrupted" if self.interrupted else ""
        where = f" ({self.path.name})" if self.path is not None else ""
        return (f"LoRA r={self.rank} alpha={self.alpha:g} on {len(self.targets)} modules ({','.join(paths)}), "
                f"{self.steps} steps{stopped}{where}")

    # -- files in peft's format ------------------------------------------------------------------

    def save(self, subject: Subject, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` as peft does; the
        folder can be loaded with ``PeftModel.from_pretrained(model, folder)``. Written beside
        ``folder`` and swapped in, so an interrupted save leaves the old folder whole."""
        folder = check_folder_target(folder, "save", overwrite=overwrite)
        with replacing_folder(folder) as staging:
            write_peft_folder(self, subject, staging)
        self.path, self.sha256 = folder.resolve(), weights_sha256(folder / WEIGHTS_FILE)
        return self.path

    @classmethod
    def load(cls, subject: Subject, folder: str | Path) -> LoraAdapter:
        """Read a peft LoRA folder (ours or one trained with peft) for ``subject``'s model."""
        folder = user_path(folder, "adapter")
        adapter = cls(**read_peft_folder(subject, folder))
        adapter.path, adapter.sha256 = folder.resolve(), weights_sha256(folder / WEIGHTS_FILE)
        adapter.check_fits(subject)
        return adapter

    def check_fits(self, subject: Subject) -> None:
        """Every target is a linear module of ``subject``'s blocks, of the shape A and B expect."""
        modules = subject.block_matrices()
        for name in self.targets:
            if name not in modules:
                raise NeuroMagicsError(f"This adapter targets {name!r}, which {subject.name} does not have: it was "
                                       f"trained for another model ({self.base_model or 'unknown'}).")
            out_features, in_features = weight_matrix(modules[name]).shape
            if self.A[name].shape != (self.rank, in_features) or self.B[name].shape != (out_features, self.rank):
                raise NeuroMagicsError(f"This adapter's weights for {name!r} do not fit {subject.name}'s module "
                                       f"[{out_features} x {in_features}]: it was trained for another model.")

    def cache(self, subject: Subject) -> Path:
        """Save into the cache under the sha256 of its weights (idempotent) and return the folder."""
        target, digest = cached_folder(lambda staging: write_peft_folder(self, subject, staging), subject.name)
        self.path, self.sha256 = target.resolve(), digest
        return target
