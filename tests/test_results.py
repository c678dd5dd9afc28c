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


VIEW_MODULES = ("IPython", "ipywidgets", "plotly", "anywidget")

_ENGINE_ONLY = """
import importlib, json, pkgutil, sys
sys.path.insert(0, {tests!r})
import neuro_magics as nm
from neuro_magics import analyses
for module in pkgutil.iter_modules(analyses.__path__):
    importlib.import_module(f"neuro_magics.analyses.{{module.name}}")
from tiny_models import tiny_model, tiny_tokenizer
subject = nm.Subject(tiny_model("llama"), tiny_tokenizer())
scan = nm.scan(subject, "hello there", lens=True, progress=False)
scan.to_pandas()
nm.attribute(subject, "hello there", steps=4, progress=False).dla
loaded = nm.load_result(scan.save({path!r}))
views = {views!r}
engine = [name for name in views if name in sys.modules]
loaded.widget(), loaded.figure()
print(json.dumps({{"engine": engine, "after_view": [name for name in views if name in sys.modules]}}))
"""


def test_the_engine_never_imports_the_views(tmp_path):
    """Importing the package and every analysis, running an attribution, and running, saving and loading a scan loads none of
    IPython, ipywidgets, plotly, anywidget; asking for the view then loads them (the check can see them)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = _ENGINE_ONLY.format(tests=str(Path(__file__).parent), path=str(tmp_path / "scan"), views=VIEW_MODULES)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert modules["engine"] == []
    assert {"ipywidgets", "plotly", "anywidget"} <= set(modules["after_view"])


def test_every_result_kind_has_a_widget_and_a_figure():
    from neuro_magics.core.results import _REGISTRY, _VIEWS, load_all_kinds
    from neuro_magics.widgets import figures, views

    load_all_kinds()
    kinds = {kind for kind in _REGISTRY if kind != _Example.kind}
    assert kinds == set(views._WIDGETS) == set(figures._FIGURES)
    assert {kind for kind, drawn in _VIEWS.items() if {"widget", "figure"} <= set(drawn)} == kinds


def test_a_result_without_a_view_says_so():
    result = _Example(np.zeros(2), [], {})
    with pytest.raises(nm.NeuroMagicsError, match="No widget for 'example-for-tests'"):
        result.widget()
    with pytest.raises(nm.NeuroMagicsError, match="No figure for 'example-for-tests'"):
        result.figure()


_FRESH_LOOKUP = """
import json, sys
import numpy as np
import neuro_magics as nm
from neuro_magics.core import results
found, views = {{}}, {{}}
for kind in {kinds!r}:
    path = {folder!r} + "/" + kind + ".npz"
    np.savez(path, __header__=np.array(json.dumps({{"kind": kind, "fields": {{}}, "metadata": {{}}}})))
    try:
        nm.load_result(path)
    except nm.NeuroMagicsError as error:
        found[kind] = str(error)
    cls = results._REGISTRY.get(kind)
    if cls is not None:
        bare = cls.__new__(cls)
        views[kind] = []
        for name in ("widget", "figure", "html"):
            try:
                views[kind].append(results.view_of(bare, name).__name__)
            except nm.NeuroMagicsError:
                pass
print(json.dumps({{"found": found, "views": views}}))
"""


def test_every_kind_loads_and_finds_its_views_in_a_fresh_process(tmp_path):
    """A fresh process that imported only the package finds each kind's class when it loads a file
    (the kinds loader the facade installs) and each kind's widget and figure (the views loader),
    and an HTML page (the checkup its own, every other kind the generic one); core itself
    imports neither layer."""
    import json
    import subprocess
    import sys

    from neuro_magics.core.results import _REGISTRY, load_all_kinds

    load_all_kinds()
    kinds = sorted(kind for kind in _REGISTRY if kind != _Example.kind)
    assert len(kinds) >= 20
    script = _FRESH_LOOKUP.format(kinds=kinds, folder=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for kind in kinds:  # an empty header reaches the kind's own _rebuild: its class was found
        assert f"its {kind} data is incomplete" in report["found"][kind], report["found"][kind]
        assert len(report["views"][kind]) >= 2, kind
    assert report["views"]["checkup"] == ["checkup_widget", "checkup_figure", "checkup_html"]
    assert report["views"]["scan"] == ["scan_widget", "scan_figure", "result_html"]  # the page any kind gets
