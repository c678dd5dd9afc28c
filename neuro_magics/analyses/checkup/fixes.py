"""Each finding's action as an intervention: the massive-activation clamp, head and neuron ablations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...core.errors import NeuroMagicsError
from ...core.interventions import Hook, Intervention, rebuilder, replacing_output
from ...core.subject import Subject
from ..diffing import DiffResult, compare
from ..interventions import ablate


@rebuilder("massive")
def massive_fix(subject: Subject, arguments: dict[str, Any], description: str) -> Intervention:
    """At each listed block's output, every cell of the listed dims whose magnitude is above the
    block's threshold is replaced by the recorded value (the corpus mean of those cells, or 0)."""
    hooks = []
    for entry in arguments["blocks"]:
        dims = torch.tensor(entry["dims"], dtype=torch.long, device=subject.device)
        values = torch.tensor(entry["values"], dtype=subject.dtype, device=subject.device)
        hooks.append(Hook(subject.blocks[entry["block"]], "forward", _clamp_hook(dims, values, entry["threshold"])))
    return Intervention("massive", description, arguments, hooks)


def _clamp_hook(dims: torch.Tensor, values: torch.Tensor, threshold: float):
    def clamped(hidden: torch.Tensor) -> torch.Tensor:
        index = dims.to(hidden.device)  # the block's device (a model spread over GPUs)
        chosen = hidden[..., index]
        new = hidden.clone()
        new[..., index] = torch.where(chosen.abs() > threshold, values.to(device=hidden.device, dtype=hidden.dtype),
                                      chosen)
        return new

    return replacing_output(clamped)



def action_intervention(action: dict[str, Any], subject: Subject, *, mode: str | None = None) -> Intervention:
    """The (not installed) intervention a finding's ``action`` describes; ``mode`` overrides a
    massive-activation fix's ``mean`` / ``zero``."""
    if action.get("kind") == "massive":
        mode = mode or action["mode"]
        if mode not in ("mean", "zero"):
            raise NeuroMagicsError(f"Unknown mode {mode!r}: set massive activations to their mean or zero.")
        blocks = [{**entry, "values": entry["means"] if mode == "mean" else [0.0] * len(entry["dims"])}
                  for entry in action["blocks"]]
        dims = sorted({d for entry in blocks for d in entry["dims"]})
        description = (f"set massive activations of dim{'s' if len(dims) > 1 else ''} "
                       f"{','.join(map(str, dims))} to {'their mean' if mode == 'mean' else 'zero'}")
        return massive_fix(subject, {"blocks": blocks, "mode": mode}, description)
    if action.get("kind") == "ablate_heads":
        return ablate(subject, heads=[tuple(p) for p in action["heads"]], install=False)
    if action.get("kind") == "ablate_neurons":
        return ablate(subject, neurons=[tuple(p) for p in action["neurons"]], install=False)
    raise NeuroMagicsError(f"Unknown action {action.get('kind')!r}.")


def install_with_diff(subject: Subject, intervention: Intervention, prompts: Sequence[str] | None, *,
                      max_new_tokens: int) -> DiffResult:
    """Install ``intervention`` and return its before/after diff: one step under the model's
    lock, so a failure in the diff installs nothing."""
    with subject.lock:
        diff = compare(subject, lambda: intervention.applied(subject), prompts, max_new_tokens=max_new_tokens,
                       label_after=intervention.description)
        intervention.install(subject)
    return diff
