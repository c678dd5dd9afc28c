"""NumPy arrays as binary widget traits.

Arrays cross to the browser as ``{"view": memoryview, "dtype": str, "shape": [...]}``:
ipywidgets lifts the memoryview out of the JSON state into a binary buffer (base64 in a
saved notebook), so a 30 x 512 float32 map costs 60 KB instead of megabytes of JSON text.
"""

from __future__ import annotations

import numpy as np
import traitlets

SUPPORTED_DTYPES = ("float16", "float32", "int32", "uint8")


class WidgetDataError(traitlets.TraitError, ValueError):
    """Bad widget input; a ValueError so callers need not know about traitlets."""


def array_to_json(array: np.ndarray | None, widget=None) -> dict | None:
    """Serialise to a little-endian, C-contiguous byte view plus dtype and shape."""
    if array is None:
        return None
    contiguous = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {
        "view": memoryview(contiguous.reshape(-1)).cast("B"),
        "dtype": str(array.dtype),
        "shape": list(array.shape),
    }


def array_from_json(payload: dict | None, widget=None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` (front ends hand back memoryviews or bytes)."""
    if payload is None:
        return None
    dtype = np.dtype(payload["dtype"]).newbyteorder("<")
    return np.frombuffer(bytes(payload["view"]), dtype=dtype).reshape(payload["shape"])


array_serialization = {"to_json": array_to_json, "from_json": array_from_json}


class NDArray(traitlets.TraitType):
    """A numpy array trait of one dtype and rank; values are coerced, never silently reshaped."""

    default_value = None
    info_text = "a numpy array"

    def __init__(self, dtype: str, ndim: int, allow_none: bool = False, **kwargs):
        if dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.ndim = ndim
        super().__init__(default_value=None, allow_none=allow_none, **kwargs)
        self.tag(sync=True, **array_serialization)

    def validate(self, obj, value):
        if value is None:
            if self.allow_none:
                return None
            raise WidgetDataError(f"{self.name} must be an array, got None")
        try:
            array = np.asarray(value)
        except Exception as exc:  # ragged nested lists and the like
            raise WidgetDataError(f"{self.name} must be array-like: {exc}") from None
        if array.ndim != self.ndim:
            raise WidgetDataError(
                f"{self.name} must have {self.ndim} dimensions, got shape {tuple(array.shape)}"
            )
        if array.dtype.kind not in "biuf":
            raise WidgetDataError(f"{self.name} must be numeric, got dtype {array.dtype}")
        if self.dtype.kind in "iu" and array.dtype.kind == "f":
            raise WidgetDataError(f"{self.name} must hold integers, got dtype {array.dtype}")
        return np.ascontiguousarray(array, dtype=self.dtype)

    def make_dynamic_default(self):
        return None
