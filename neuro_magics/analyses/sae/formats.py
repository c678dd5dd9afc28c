"""Published SAE files: SAELens's and EleutherAI sparsify's on-disk formats, read into plain
arrays in our conventions (``W_enc [d, w]``, ``W_dec [w, d]``, an activation function and the
site it reads), and SAELens's format written from our own SAEs.

SAELens: a folder with ``cfg.json`` and ``sae_weights.safetensors`` (``W_enc [d_in, d_sae]``,
``b_enc``, ``W_dec [d_sae, d_in]``, ``b_dec``, ``threshold`` for JumpReLU); ``architecture``
standard / topk / jumprelu; ``hook_name`` a TransformerLens name such as
``blocks.5.hook_resid_post`` (top level, or under ``meta`` since SAELens 6).
sparsify: a folder per hookpoint with ``cfg.json`` and ``sae.safetensors`` (``encoder.weight
[w, d]``, ``encoder.bias``, ``W_dec [w, d]``, ``b_dec``); TopK with ``k``; the folder name is the
hookpoint, a module path such as ``layers.5`` (that block's output) or ``layers.5.mlp``.
Both subtract ``b_dec`` from the input before encoding (SAELens unless
``apply_b_dec_to_input`` is false).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import NeuroMagicsError
from ...core.files import replacing_folder

SAELENS_WEIGHTS = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
CONFIG = "cfg.json"
#: TransformerLens hook names -> our sites.
_TL_SITES = {"hook_resid_pre": "resid_pre", "hook_resid_post": "resid_post", "hook_mlp_out": "mlp_out",
             "hook_attn_out": "attn_out"}
#: The last part of a sparsify hookpoint -> our site (no suffix: the block's output).
_MODULE_SITES = {"": "resid_post", "mlp": "mlp_out", "self_attn": "attn_out", "attn": "attn_out",
                 "attention": "attn_out"}


@dataclass
class SaeWeights:
    """One SAE read from files, in our conventions (``x`` in the model's units)."""

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    activation: str  # "topk", "relu" or "jumprelu"
    k: int | None
    threshold: np.ndarray | None
    center_input: bool  # subtract b_dec before encoding
    site: str | None
    block: int | None
    hook: str
    source: str


def site_of_hook(hook: str) -> tuple[str, int]:
    """``(site, block)`` of a TransformerLens hook name or a module-path hookpoint."""
    match = re.fullmatch(r"blocks\.(\d+)\.(hook_\w+)", hook)
    if match and match.group(2) in _TL_SITES:
        return _TL_SITES[match.group(2)], int(match.group(1))
    match = re.fullmatch(r"(?:[\w.]*\.)?(?:layers|h|blocks)\.(\d+)(?:\.(\w+))?", hook)
    if match and (match.group(2) or "") in _MODULE_SITES:
        return _MODULE_SITES[match.group(2) or ""], int(match.group(1))
    raise NeuroMagicsError(f"Unknown hook {hook!r}: neuro_magics reads SAEs on blocks.N.hook_resid_pre/"
                           "hook_resid_post/hook_mlp_out/hook_attn_out or layers.N[.mlp|.self_attn]; pass --layer "
                           "and --site to place it by hand.")


def find_format(folder: Path) -> str:
    """``"saelens"`` or ``"sparsify"`` from the files in ``folder``; one line if neither."""
    if not (folder / CONFIG).is_file():
        inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / CONFIG).is_file()) \
            if folder.is_dir() else []
        hint = f" It holds SAEs in {', '.join(inside[:6])}: pass one with --sae-id." if inside else ""
        raise NeuroMagicsError(f"{str(folder)!r} has no {CONFIG}: give the folder of one SAE (SAELens or "
                               f"sparsify format).{hint}")
    if (folder / SAELENS_WEIGHTS).is_file():
        return "saelens"
    if (folder / SPARSIFY_WEIGHTS).is_file():
        return "sparsify"
    raise NeuroMagicsError(f"{str(folder)!r} has {CONFIG} but neither {SAELENS_WEIGHTS} (SAELens) nor "
                           f"{SPARSIFY_WEIGHTS} (sparsify): copy the weights file next to it.")


def read_folder(folder: str | Path) -> SaeWeights:
    """Read the SAE in ``folder`` (SAELens or sparsify format)."""
    folder = Path(folder).expanduser()
    kind = find_format(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as error:
        raise NeuroMagicsError(f"Could not read {str(folder / CONFIG)!r}: {error}.") from None
    weights_file = folder / (SAELENS_WEIGHTS if kind == "saelens" else SPARSIFY_WEIGHTS)
    tensors = _read_safetensors(weights_file)
    if kind == "saelens":
        return from_saelens(config, tensors, source=str(folder))
    return from_sparsify(config, tensors, hookpoint=folder.name, source=str(folder))


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.torch import load_file

    try:
        return {name: tensor.float().numpy() for name, tensor in load_file(str(path)).items()}
    except Exception as error:  # a truncated or foreign file
        raise NeuroMagicsError(f"Could not read {str(path)!r} as safetensors: {error}.") from None


def _need(tensors: dict[str, np.ndarray], names: tuple[str, ...], where: str) -> None:
    missing = [name for name in names if name not in tensors]
    if missing:
        raise NeuroMagicsError(f"{where} lacks the tensor(s) {', '.join(missing)}: it is not a complete SAE file.")


def from_saelens(config: dict[str, Any], tensors: dict[str, np.ndarray], *, source: str) -> SaeWeights:
    """An SAE from SAELens's ``cfg.json`` and weights (``W_enc [d_in, d_sae]``)."""
    architecture = config.get("architecture", "standard")
    activations = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}
    if architecture not in activations:
        raise NeuroMagicsError(f"SAELens architecture {architecture!r} is not supported: neuro_magics reads "
                               "standard, topk and jumprelu SAEs.")
    normalize = config.get("normalize_activations", "none") or "none"
    if normalize != "none":
        raise NeuroMagicsError(f"This SAE expects activations normalized by {normalize!r}, which neuro_magics does "
                               "not apply: fold the normalization into the weights first.")
    names = ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if architecture == "jumprelu" else ())
    if architecture == "jumprelu" and "threshold" not in tensors and "log_threshold" in tensors:
        tensors = {**tensors, "threshold": np.exp(tensors["log_threshold"])}
    _need(tensors, names, source)
    hook = config.get("hook_name") or (config.get("meta") or {}).get("hook_name") or ""
    k = None
    if architecture == "topk":
        k = config.get("k") or (config.get("activation_fn_kwargs") or {}).get("k")
        if not isinstance(k, int) or k < 1:
            raise NeuroMagicsError(f"This topk SAE's {CONFIG} gives no k: add \"k\" to it.")
    weights = SaeWeights(tensors["W_enc"], tensors["b_enc"], tensors["W_dec"], tensors["b_dec"],
                         activations[architecture], k, tensors.get("threshold"),
                         bool(config.get("apply_b_dec_to_input", True)), None, None, hook, source)
    _check_shapes(weights, config.get("d_in"), config.get("d_sae"))
    return weights


def from_sparsify(config: dict[str, Any], tensors: dict[str, np.ndarray], *, hookpoint: str, source: str) -> SaeWeights:
    """An SAE from sparsify's ``cfg.json`` and weights (``encoder.weight [w, d]``)."""
    if config.get("activation", "topk") != "topk":
        raise NeuroMagicsError(f"sparsify activation {config.get('activation')!r} is not supported: neuro_magics "
                               "reads topk sparse coders.")
    if config.get("transcode") or "W_skip" in tensors:
        raise NeuroMagicsError("This sparsify file is a transcoder (or has a skip connection), not an SAE: "
                               "neuro_magics reads autoencoders only.")
    _need(tensors, ("encoder.weight", "encoder.bias", "W_dec", "b_dec"), source)
    k = config.get("k")
    if not isinstance(k, int) or k < 1:
        raise NeuroMagicsError(f"This sparsify SAE's {CONFIG} gives no k: add \"k\" to it.")
    weights = SaeWeights(np.ascontiguousarray(tensors["encoder.weight"].T), tensors["encoder.bias"],
                         tensors["W_dec"], tensors["b_dec"], "topk", k, None, True, None, None, hookpoint, source)
    _check_shapes(weights, config.get("d_in"), config.get("num_latents") or None)
    return weights


def _check_shapes(weights: SaeWeights, d_in: int | None, width: int | None) -> None:
    d, w = weights.W_enc.shape
    expected = {"W_dec": (w, d), "b_enc": (w,), "b_dec": (d,)}
    if weights.threshold is not None:
        expected["threshold"] = (w,)
    for name, shape in expected.items():
        if getattr(weights, name).shape != shape:
            raise NeuroMagicsError(f"{weights.source}: {name} has shape {getattr(weights, name).shape}, expected "
                                   f"{shape} from the encoder's {d} x {w}: the file is inconsistent.")
    if (d_in is not None and d_in != d) or (width is not None and width != w):
        raise NeuroMagicsError(f"{weights.source}: {CONFIG} says {d_in} x {width} but the weights are {d} x {w}.")
    if weights.k is not None and weights.k > w:
        raise NeuroMagicsError(f"{weights.source}: k = {weights.k} is more than the {w} features.")


def write_saelens(folder: str | Path, weights: dict[str, np.ndarray], config: dict[str, Any]) -> Path:
    """Write ``weights`` (SAELens tensor names) and ``config`` as a SAELens folder, replacing
    ``folder`` whole (weights and config together) once both are written."""
    from safetensors.numpy import save_file

    folder = Path(folder).expanduser()
    with replacing_folder(folder) as staging:
        save_file({name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()},
                  str(staging / SAELENS_WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(config, indent=1))
    return folder
