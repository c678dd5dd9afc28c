"""Binary array traits: memoryviews on the wire, exact round trips, clear errors."""

import numpy as np
import pytest
import traitlets

from neuro_magics.widgets._arrays import NDArray, WidgetDataError, array_from_json, array_to_json


@pytest.mark.parametrize("dtype", ["float16", "float32", "int32", "uint8"])
def test_round_trip_is_exact_and_binary(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    payload = array_to_json(array)
    assert isinstance(payload["view"], memoryview)
    assert payload["view"].format == "B" and payload["view"].nbytes == array.nbytes
    assert payload["dtype"] == dtype and payload["shape"] == [2, 3, 4]
    back = array_from_json({**payload, "view": bytes(payload["view"])})
    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_nan_and_infinities_survive(dtype):
    array = np.array([np.nan, np.inf, -np.inf, 0.5], dtype=dtype)
    back = array_from_json(array_to_json(array))
    assert np.isnan(back[0]) and np.isposinf(back[1]) and np.isneginf(back[2]) and back[3] == 0.5


def test_non_contiguous_and_big_endian_inputs_are_normalised():
    array = np.arange(12, dtype=">f4").reshape(3, 4)[:, ::2]
    payload = array_to_json(array)
    assert np.frombuffer(payload["view"], dtype="<f4").tolist() == [0, 2, 4, 6, 8, 10]


class Holder(traitlets.HasTraits):
    weights = NDArray("float16", 2)
    ids = NDArray("int32", 1, allow_none=True)


def test_trait_coerces_dtype_and_checks_rank():
    holder = Holder(weights=[[0.1, 0.2]])
    assert holder.weights.dtype == np.float16 and holder.weights.flags.c_contiguous
    with pytest.raises(ValueError, match=r"^weights must have 2 dimensions, got shape \(3,\)$"):
        holder.weights = np.zeros(3)
    with pytest.raises(ValueError, match="must hold integers"):
        holder.ids = np.array([0.5])
    with pytest.raises(ValueError, match="must be numeric"):
        holder.weights = np.array([["a"]])
    with pytest.raises(ValueError, match="must be an array, got None"):
        holder.weights = None
    holder.ids = None


def test_error_is_both_value_error_and_trait_error():
    assert issubclass(WidgetDataError, ValueError) and issubclass(WidgetDataError, traitlets.TraitError)
