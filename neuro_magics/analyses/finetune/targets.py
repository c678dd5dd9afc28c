"""Which linear modules a LoRA covers, and their names: ``"<block>.<path>"`` (block: an original
layer of the model, whatever the layer program) and the module's path in the model (peft's keys)."""

from __future__ import annotations

from collections.abc import Sequence

from ...core.adapters import linear_modules
from ...core.errors import NeuroMagicsError
from ...core.subject import Subject


def module_path(subject: Subject, name: str) -> str:
    """``"3.self_attn.q_proj"`` -> the module's path in the model, ``"model.layers.3.self_attn.q_proj"``."""
    return f"{subject.adapter.body}.{subject.adapter.blocks}.{name}"


def block_name(subject: Subject, path: str) -> str:
    """The reverse of ``module_path``; a module outside the blocks is refused."""
    prefix = f"{subject.adapter.body}.{subject.adapter.blocks}."
    if not path.startswith(prefix):
        raise NeuroMagicsError(f"This adapter targets {path!r}, outside {subject.name}'s decoder blocks "
                               f"({prefix}N...): load it with peft instead.")
    return path.removeprefix(prefix)


def default_modules(subject: Subject) -> list[str]:
    """peft's default LoRA targets for the architecture (q_proj, v_proj for Llama), else the
    attention's input projections."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    names = DEFAULTS.get(getattr(subject.model.config, "model_type", ""))
    if names:
        return list(names)
    attention = subject.adapter.attn_weights
    output = subject.adapter.heads.rsplit(".", 1)[-1]
    return sorted({name.rsplit(".", 1)[-1] for name in linear_modules(subject.blocks[0])
                   if name.startswith(attention + ".") and not name.endswith("." + output)})


def resolve_targets(subject: Subject, modules: Sequence[str] | str | None) -> list[str]:
    """The ``"<block>.<path>"`` names a LoRA on ``modules`` covers: each entry matches module
    paths that end with it (peft's rule), in every block."""
    if isinstance(modules, str):
        modules = [m.strip() for m in modules.split(",") if m.strip()]
    wanted = list(default_modules(subject) if modules is None else modules)
    if not wanted:
        raise NeuroMagicsError("--modules is empty: name linear modules, e.g. --modules q_proj,v_proj.")
    available = subject.block_matrices()
    targets = []
    for entry in wanted:
        found = [name for name in available if name.split(".", 1)[1] == entry or name.endswith("." + entry)]
        if not found:
            names = sorted({name.split(".", 1)[1] for name in available})
            raise NeuroMagicsError(f"No linear module {entry!r} in {subject.name}'s blocks: use one of "
                                   f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}.")
        targets += [name for name in found if name not in targets]
    return sorted(targets, key=lambda name: (int(name.split(".", 1)[0]), name))


def target_blocks(targets: Sequence[str]) -> list[int]:
    """The original blocks (not program steps) that ``"<block>.<path>"`` names sit in."""
    return sorted({int(name.split(".", 1)[0]) for name in targets})


def describe_blocks(blocks: Sequence[int]) -> str:
    """``"blocks 0-3"``, ``"blocks 1,4"`` or ``"block 2"``: original blocks, said as such."""
    if len(blocks) == 1:
        return f"block {blocks[0]}"
    if list(blocks) == list(range(blocks[0], blocks[-1] + 1)):
        return f"blocks {blocks[0]}-{blocks[-1]}"
    return "blocks " + ",".join(map(str, blocks))
