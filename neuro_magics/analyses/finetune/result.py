"""The result of a fine-tune: its loss per step and where the adapter it installed lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.results import Result
from .adapter import LoraAdapter
from .config import FinetuneConfig
from .targets import describe_blocks, target_blocks


@dataclass(repr=False, eq=False)
class FinetuneResult(Result):
    """A LoRA fine-tune: its loss per step and the adapter it installed (in ``adapter_path``)."""

    kind = "finetune"

    loss: np.ndarray  # [steps done] training loss (mean next-token cross-entropy of the batch)
    rank: int
    alpha: float
    targets: list[str]
    steps: int  # requested
    interrupted: bool
    adapter_path: str | None  # the folder the installed adapter lives in (None: nothing installed)
    sha256: str | None
    seconds: float
    n_tokens: int
    metadata: dict[str, Any]
    adapter: LoraAdapter | None = field(default=None, repr=False)

    @property
    def steps_done(self) -> int:
        return len(self.loss)

    @property
    def blocks(self) -> list[int]:
        """The original blocks (not program steps) the adapter's modules sit in; under a layer
        program it acts at every step that runs one of them."""
        return target_blocks(self.targets)

    @property
    def config(self) -> FinetuneConfig:
        """The options this fine-tune ran with, from its metadata (a result saved before the
        config existed kept them as loose keys, ``modules`` as the resolved targets)."""
        if "config" in self.metadata:
            return FinetuneConfig.from_dict(self.metadata["config"])
        loose = {option.name: self.metadata[option.name] for option in FinetuneConfig.options()
                 if option.name in self.metadata}
        loose["modules"] = sorted({name.split(".", 1)[1] for name in loose.get("modules") or self.targets})
        return FinetuneConfig.from_dict(loose)

    def to_numpy(self) -> np.ndarray:
        return self.loss

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"step": np.arange(1, self.steps_done + 1), "loss": self.loss})

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"loss": self.loss}

    def _fields(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha, "targets": self.targets, "steps": self.steps,
                "interrupted": self.interrupted, "adapter_path": self.adapter_path, "sha256": self.sha256,
                "seconds": self.seconds, "n_tokens": self.n_tokens}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata) -> FinetuneResult:
        return cls(loss=arrays["loss"], metadata=metadata, **fields)

    def __repr__(self) -> str:
        stopped = f", interrupted after {self.steps_done}" if self.interrupted else ""
        loss = f"loss {self.loss[0]:.3f} -> {self.loss[-1]:.3f}" if self.steps_done else "no step done"
        where = f"adapter in {self.adapter_path}" if self.adapter_path else "no adapter installed"
        return (f"FinetuneResult(LoRA r={self.rank} alpha={self.alpha:g} on {len(self.targets)} modules of "
                f"{describe_blocks(self.blocks)}, "
                f"{self.steps} steps{stopped}: {loss} on {self.n_tokens} tokens in {self.seconds:.1f} s; {where})")
