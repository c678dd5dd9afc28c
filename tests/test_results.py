"""The shared result base: save / load round trip, metadata, errors."""

from __future__ import annotations

import numpy as np
import pytest

import neuro_magics as nm
from neuro_magics.core.results import Result, run_metadata


class _Example(Result):
    kind = "example-for-tests"

    def __init__(self, values, labels, metadata):
        self.values, self.labels, self.metadata = values, labels, metadata

    def _arrays(self):
        return {"values": self.values}

    def _fields(self):
        return {"labels": self.labels}

    @classmethod
    def _rebuild(cls, arrays, fields, metadata):
        return cls(arrays["values"], fields["labels"], metadata)


def test_save_and_load_round_trip(tiny, tmp_path):
    metadata = run_metadata(tiny, ["a prompt"], note="x")
    assert metadata["program"] == list(range(tiny.n_layers)) and metadata["versions"]["torch"]
    values = np.array([[1.5, np.nan], [0.0, -2.0]], dtype=np.float32)
    path = _Example(values, ["a", "b"], metadata).save(tmp_path / "result")
    assert path.suffix == ".npz"
    loaded = nm.load_result(path)
    assert isinstance(loaded, _Example)
    np.testing.assert_array_equal(loaded.values, values)
    assert loaded.labels == ["a", "b"] and loaded.metadata == metadata


def test_loading_a_missing_or_foreign_file_is_one_line(tmp_path):
    with pytest.raises(nm.NeuroMagicsError, match="No file"):
        nm.load_result(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(nm.NeuroMagicsError, match="not a saved"):
        nm.load_result(tmp_path / "junk.npz")
