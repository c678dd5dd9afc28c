"""An adapter's files in peft's format (``adapter_config.json`` + ``adapter_model.safetensors``
with peft's key names), their content hash, and the content-addressed cache of fine-tuned adapters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...core.errors import NeuroMagicsError
from ...core.content_cache import store_folder
from ...core.subject import Subject
from .targets import block_name, module_path

if TYPE_CHECKING:
    from .adapter import LoraAdapter

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
#: peft's key prefix for a causal LM (``PeftModelForCausalLM.base_model.model``).
_PEFT_PREFIX = "base_model.model."


def write_peft_folder(adapter: LoraAdapter, subject: Subject, folder: Path) -> None:
    """Write ``adapter`` into the existing ``folder`` as peft's ``save_pretrained`` does."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    tensors = {}
    for name in adapter.targets:
        key = _PEFT_PREFIX + module_path(subject, name)
        tensors[f"{key}.lora_A.weight"] = adapter.A[name].detach().float().cpu().contiguous()
        tensors[f"{key}.lora_B.weight"] = adapter.B[name].detach().float().cpu().contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE),
              metadata={"format": "pt", "steps": str(adapter.steps), "interrupted": str(int(adapter.interrupted))})
    config = LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                        use_rslora=adapter.use_rslora, target_modules=sorted({name.split(".", 1)[1] for name in adapter.targets}),
                        task_type="CAUSAL_LM", base_model_name_or_path=adapter.base_model or subject.name,
                        fan_in_fan_out=subject.adapter.family == "gpt2")
    config.save_pretrained(str(folder))


def read_peft_folder(subject: Subject, folder: Path) -> dict[str, Any]:
    """The ``LoraAdapter`` fields of a peft LoRA folder (ours or one trained with peft), named for
    ``subject``'s blocks; what this package cannot apply is refused in one line."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise NeuroMagicsError(f"{str(folder)!r} is not a LoRA adapter folder: it needs {CONFIG_FILE} and "
                               f"{WEIGHTS_FILE} (what peft's save_pretrained writes).")
    try:
        config = _lora_config(folder)
        tensors = load_file(str(folder / WEIGHTS_FILE))
        with safe_open(str(folder / WEIGHTS_FILE), "pt") as handle:
            info = handle.metadata() or {}
    except Exception as error:  # noqa: BLE001 - any unreadable file is one line
        raise NeuroMagicsError(f"Could not read the adapter in {str(folder)!r}: {str(error).splitlines()[0]}.") from None
    unsupported = [name for name, value in (
        ("DoRA (use_dora)", getattr(config, "use_dora", False)),
        ("per-module ranks (rank_pattern)", getattr(config, "rank_pattern", None)),
        ("per-module alphas (alpha_pattern)", getattr(config, "alpha_pattern", None)),
        ("trained full modules (modules_to_save)", getattr(config, "modules_to_save", None)),
        ("LoRA biases (lora_bias)", getattr(config, "lora_bias", False)),
    ) if value]
    if str(getattr(config, "peft_type", "LORA")).rsplit(".", 1)[-1] != "LORA":
        unsupported.append(f"peft type {config.peft_type}")
    if unsupported:
        raise NeuroMagicsError(f"The adapter in {str(folder)!r} uses {unsupported[0]}, which neuro_magics does not "
                               "apply: load it with peft instead.")
    A, B = {}, {}
    for key, value in tensors.items():
        stripped = key.removeprefix(_PEFT_PREFIX)
        for suffix, store in ((".lora_A.weight", A), (".lora_B.weight", B)):
            if stripped.endswith(suffix):
                store[block_name(subject, stripped.removesuffix(suffix))] = value
                break
        else:
            raise NeuroMagicsError(f"The adapter in {str(folder)!r} holds {key!r}, not a LoRA A/B weight: "
                                   "load it with peft instead.")
    if set(A) != set(B) or not A:
        raise NeuroMagicsError(f"The adapter in {str(folder)!r} does not hold an A and a B for every module.")
    return {"rank": int(config.r), "alpha": float(config.lora_alpha), "A": A, "B": B,
            "dropout": float(config.lora_dropout), "use_rslora": bool(config.use_rslora),
            "steps": int(info.get("steps", 0)), "interrupted": info.get("interrupted") == "1",
            "base_model": str(config.base_model_name_or_path or "")}


def cached_folder(write: Callable[[Path], None], model_name: str) -> tuple[Path, str]:
    """The adapter in the content-addressed cache (core.content_cache): ``write(folder)`` fills
    a staging folder, kept as ``<cache>/adapters/<model>-<sha256 of its weights>`` unless an
    identical one is there already; returns that folder and the digest."""
    def digest_of(folder: Path) -> str:
        return weights_sha256(folder / WEIGHTS_FILE) if (folder / WEIGHTS_FILE).is_file() else ""

    return store_folder("adapters", write, digest_of, prefix=f"{_slug(model_name)}-")


# Keys a newer peft writes that change nothing while another key is off (or at all).
_INERT_KEYS = {"peft_version": None, "qalora_group_size": "use_qalora"}


def _lora_config(folder: Path):
    """The folder's LoraConfig under the installed peft. A config written by a newer peft holds
    keys an older one does not know (its own from_pretrained then fails): keys left at nothing
    (None, False, empty) or inert are dropped; any other is refused, since it may switch on a
    method this peft cannot apply."""
    import dataclasses

    import peft
    from peft import LoraConfig

    data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    known = {field.name for field in dataclasses.fields(LoraConfig)}
    for key, value in data.items():
        if key in known or value in (None, False, [], {}, ""):
            continue
        if key in _INERT_KEYS and (_INERT_KEYS[key] is None or not data.get(_INERT_KEYS[key])):
            continue
        raise NeuroMagicsError(f"The adapter in {str(folder)!r} sets {key!r}, which peft {peft.__version__} does not "
                               "know: upgrade peft (pip install -U peft) to load it.")
    return LoraConfig(**{key: value for key, value in data.items() if key in known})


def weights_sha256(path: Path) -> str:
    """sha256 of an adapter weights file's tensors (names, dtypes, shapes, bytes, in name order)
    and its step count: safetensors writes its metadata in no fixed order, so the file's own
    bytes are not reproducible."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(path), "pt") as handle:
        info = handle.metadata() or {}
        digest.update(f"steps={info.get('steps', '')};interrupted={info.get('interrupted', '')}".encode())
        for key in sorted(handle.keys()):
            tensor = handle.get_tensor(key).contiguous()
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.rsplit("/", 1)[-1])[:40] or "model"

