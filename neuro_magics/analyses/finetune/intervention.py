"""An adapter as an intervention on the Subject: hooked on the original modules (``lora``) or
merged into the weights (``lora_merged``), rebuilt from its folder when a result is replayed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...core.adapters import weight_matrix
from ...core.errors import NeuroMagicsError
from ...core.interventions import ADAPTER_KINDS, Hook, Intervention, WeightChange, rebuilder
from ...core.subject import Subject
from .adapter import LoraAdapter
from .files import WEIGHTS_FILE

#: The kinds of the two ways an adapter is active: hooked (``lora``) or written into the weights.
KINDS = ADAPTER_KINDS  # core owns the adapter kinds (model_diff reads them there)


@dataclass(eq=False, repr=False)
class AdapterIntervention(Intervention):
    """An installed adapter: hooked (kind ``lora``) or merged into the weights (``lora_merged``)."""

    adapter: LoraAdapter | None = field(default=None, repr=False)


def _lora_hook(A: torch.Tensor, B: torch.Tensor, scaling: float, dropout: float, training: Callable[[], bool]):
    """peft's LoRA forward on the module's own output: ``out + B(A(dropout(x))) * scaling``."""

    def hook(module, args, output):
        x = args[0].to(A.dtype)
        if dropout and training():
            x = F.dropout(x, dropout, training=True)
        # on the module's device (a model spread over GPUs); differentiable, so training still reaches A and B
        return (output + F.linear(F.linear(x, A.to(x.device)), B.to(x.device)) * scaling).to(output.dtype)

    return hook


def adapter_intervention(subject: Subject, adapter: LoraAdapter, *, merged: bool = False,
                         training: Callable[[], bool] = lambda: False) -> AdapterIntervention:
    """The intervention of ``adapter`` on ``subject`` (not installed). Its spec records the
    adapter's folder and the sha256 of its weights: save or cache the adapter first."""
    adapter.check_fits(subject)
    modules = subject.block_matrices()
    arguments = {"adapter": None if adapter.path is None else str(adapter.path), "sha256": adapter.sha256}
    kind = "lora_merged" if merged else "lora"
    description = ("merged " if merged else "") + adapter.describe()
    if merged:
        chosen = [modules[name] for name in adapter.targets]

        def apply() -> None:
            for name, module in zip(adapter.targets, chosen):
                weight = weight_matrix(module)
                weight.add_(adapter.delta(name).to(weight.device, weight.dtype))

        change = WeightChange([module.weight for module in chosen], apply)
        return AdapterIntervention(kind, description, arguments, hooks=[], weights=change, adapter=adapter)
    device = subject.device
    hooks = []
    for name in adapter.targets:
        A, B = adapter.A[name], adapter.B[name]
        if A.device != device:
            A, B = A.to(device), B.to(device)
        hooks.append(Hook(modules[name], "forward", _lora_hook(A, B, adapter.scaling, adapter.dropout, training)))
    return AdapterIntervention(kind, description, arguments, hooks=hooks, adapter=adapter)


def _from_spec(subject: Subject, arguments: dict[str, Any], merged: bool) -> AdapterIntervention:
    path = arguments.get("adapter")
    if not path or not (Path(path) / WEIGHTS_FILE).is_file():
        raise NeuroMagicsError(f"The adapter folder {path!r} this result records is gone: save the adapter there "
                               "again to replay it.")
    adapter = LoraAdapter.load(subject, path)
    if arguments.get("sha256") and adapter.sha256 != arguments["sha256"]:
        raise NeuroMagicsError(f"The adapter in {path!r} changed since this was recorded (sha256 differs): "
                               "it cannot be replayed exactly.")
    return adapter_intervention(subject, adapter, merged=merged)


@rebuilder("lora")
def _hooked(subject: Subject, arguments: dict[str, Any], description: str) -> AdapterIntervention:
    return _from_spec(subject, arguments, merged=False)


@rebuilder("lora_merged")
def _merged(subject: Subject, arguments: dict[str, Any], description: str) -> AdapterIntervention:
    return _from_spec(subject, arguments, merged=True)

