"""Models that accelerate spreads over devices, CPU and disk (``device_map``).

An offloaded module's parameters are ``meta`` placeholders; accelerate's hook on the module
loads the real values from its store (CPU memory or files in the offload folder) for each
forward and drops them after. Everything that runs the model works through those hooks
untouched. Code that reads weights directly reads them here, through the same hooks; code
that rewrites weights refuses, since a write into a loaded copy is lost when the hook drops it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch
from torch import nn

from .adapters import weight_matrix
from .errors import NeuroMagicsError


def offloaded_modules(model: nn.Module) -> list[str]:
    """Names of the modules whose own parameters accelerate keeps off the model (meta placeholders)."""
    return [name for name, module in model.named_modules()
            if any(p.device.type == "meta" for p in module.parameters(recurse=False))]


@contextlib.contextmanager
def loaded(module: nn.Module) -> Iterator[nn.Module]:
    """Inside, ``module`` and its submodules hold their real weights (offloaded ones loaded by
    their accelerate hooks, one module's worth at a time as the caller reads), dropped again
    after. For reading only."""
    offloaded = [m for m in module.modules() if any(p.device.type == "meta" for p in m.parameters(recurse=False))]
    if not offloaded:
        yield module
        return
    from accelerate.utils import align_module_device

    with contextlib.ExitStack() as stack:
        for part in offloaded:
            if getattr(part, "_hf_hook", None) is None:
                raise NeuroMagicsError(
                    f"{type(part).__name__} has meta weights but no accelerate hook that loads them; "
                    "load the model again.")
            stack.enter_context(align_module_device(part))
        yield module


def weight_value(module: nn.Module) -> torch.Tensor:
    """A linear module's weight ``[out, in]`` as it is now, detached; read through accelerate's
    hook (a copy) where the module is offloaded. Use ``weight_matrix`` to write."""
    if module.weight.device.type != "meta":
        return weight_matrix(module).detach()
    with loaded(module):
        return weight_matrix(module).detach().clone()


def weight_float64(module: nn.Module) -> torch.Tensor:
    """``weight_value`` in float64 where float64 linear algebra is fast: on its CUDA device,
    else on the CPU (MPS has no float64). A 7.6B model's spectra took 165 s on the CPU."""
    weight = weight_value(module)
    return weight.to(weight.device if weight.device.type == "cuda" else "cpu", torch.float64)


def parameter_values(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every parameter's current value, in ``model.parameters()`` order; offloaded ones are
    loaded one module at a time, so memory stays bounded by the largest module."""
    seen = set()
    for module in model.modules():
        own = [name for name, p in module.named_parameters(recurse=False) if id(p) not in seen]
        seen.update(id(getattr(module, name)) for name in own)
        if not own:
            continue
        meta = any(getattr(module, name).device.type == "meta" for name in own)
        with loaded(module) if meta else contextlib.nullcontext():
            for name in own:
                yield getattr(module, name).detach()


def shared_stores(module: nn.Module) -> dict[int, object]:
    """A ``copy.deepcopy`` memo that keeps accelerate's weight stores shared: a copied offloaded
    block then loads from the same store (files on disk, offloaded CPU weights) instead of
    carrying its own copy of every offloaded weight of the model."""
    memo: dict[int, object] = {}
    for part in module.modules():
        hook = getattr(part, "_hf_hook", None)
        for one in getattr(hook, "hooks", (hook,)):
            store = getattr(one, "weights_map", None)
            for shared in (store, getattr(store, "dataset", None)):
                if shared is not None:
                    memo[id(shared)] = shared
    return memo


def refuse_offloaded(model: nn.Module, action: str) -> None:
    """One line saying why ``action`` (which rewrites weights) cannot run on an offloaded model."""
    names = offloaded_modules(model)
    if names:
        blocks = list(dict.fromkeys(
            f"block {match[1]}" if (match := re.search(r"\.(?:layers|h)\.(\d+)(\.|$)", name)) else name
            for name in names))
        shown = ", ".join(blocks[:3]) + (f" and {len(blocks) - 3} more" if len(blocks) > 3 else "")
        raise NeuroMagicsError(
            f"{action} rewrites weights, but accelerate keeps {shown} offloaded (device_map), where a write "
            "would be lost; load the model without offloading (e.g. --dtype bfloat16 on one device) to do this.")
