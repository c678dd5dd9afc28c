"""The SAE oracle the SAE tests share: encode and decode written out in float64 numpy from an
SAE's raw arrays, independent of the product's torch coder."""

from __future__ import annotations

import numpy as np


def arrays_of(sae) -> dict[str, np.ndarray]:
    """An SAE's weights (and threshold, if any) as float64 arrays."""
    names = ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if sae.threshold is not None else ())
    return {name: np.asarray(getattr(sae, name), dtype=np.float64) for name in names}


def hand_encode(arrays: dict, x: np.ndarray, activation: str = "topk", k: int | None = None, scale: float = 1.0,
                center: bool = True) -> np.ndarray:
    """Dense codes: ReLU / JumpReLU / TopK (the k largest, then ReLU) of ``(x s - b_dec) W_enc + b_enc``."""
    xs = np.asarray(x, np.float64) * scale
    pre = ((xs - arrays["b_dec"]) if center else xs) @ np.asarray(arrays["W_enc"], np.float64) + arrays["b_enc"]
    if activation == "relu":
        return np.maximum(pre, 0)
    if activation == "jumprelu":
        return np.where(pre > arrays["threshold"], np.maximum(pre, 0), 0)
    keep = np.argsort(-pre, axis=-1)[..., :k]
    dense = np.zeros_like(pre)
    np.put_along_axis(dense, keep, np.maximum(np.take_along_axis(pre, keep, -1), 0), -1)
    return dense


def hand_decode(arrays: dict, dense: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Activations in the model's units rebuilt from dense codes: ``(f W_dec + b_dec) / s``."""
    return (dense @ np.asarray(arrays["W_dec"], np.float64) + arrays["b_dec"]) / scale


def hand_topk_codes(sae, x: np.ndarray) -> np.ndarray:
    """A trained (TopK) SAE's dense codes of activations ``x`` in the model's units."""
    return hand_encode(arrays_of(sae), x, "topk", k=sae.k, scale=sae.scale)


def hand_topk_rebuilt(sae, x: np.ndarray) -> np.ndarray:
    """A trained (TopK) SAE's reconstruction of ``x``, in the model's units."""
    return hand_decode(arrays_of(sae), hand_topk_codes(sae, x), sae.scale)
