"""result.to_html for any kind: one offline page holding each widget of the view (a box's children in
order, HTML parts as markup, each bundle once), written whole; bad targets refused before any work."""

import base64
import json
import re
from pathlib import Path

import ipywidgets
import numpy as np
import pytest

import neuro_magics as nm
from neuro_magics.analyses.probing import ProbeResult
from neuro_magics.widgets.lines import LinesWidget
from neuro_magics.widgets.scatter import ScatterWidget
from neuro_magics.widgets.standalone import standalone_html

STATIC = Path(nm.__file__).parent / "static"


def planted_probe() -> ProbeResult:
    folds = np.array([[0.5, 0.5], [0.75, 0.75], [1.0, 1.0]], dtype=np.float32)
    return ProbeResult(
        texts=["a"] * 8, labels=["x", "y"] * 4, classes=["x", "y"], steps=[2, 5, 9], blocks=[2, 5, 9],
        site="resid_pre", pooling="mean", probe_kind="logreg", fold_accuracy=folds, fold_control=folds[::-1] / 2,
        weights=np.zeros((3, 1, 4)), bias=np.zeros((3, 1)), class_means=np.zeros((3, 2, 4)), metadata={"model": "m"},
    )


def page_data(page: str) -> tuple[list, dict]:
    """The page's parts and its bundles (decoded), read back from the two JSON script elements."""
    def read(element_id: str):
        text = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S).group(1)
        return json.loads(text)
    bundles = {name: base64.b64decode(source).decode("utf-8") for name, source in read("nm-esm").items()}
    return read("nm-parts"), bundles


def test_a_box_becomes_its_widgets_in_order_each_bundle_once():
    lines_a = LinesWidget(np.array([[0.1, 0.2]]), ["a"], ["0", "1"], title="first </script> chart")
    scatter = ScatterWidget(np.array([[0.0, 1.0], [2.0, 0.5], [1.0, -1.0]]), title="map")
    lines_b = LinesWidget(np.array([[0.3, 0.4]]), ["b"], ["0", "1"], title="second")
    box = ipywidgets.VBox([lines_a, ipywidgets.HTML("<b>a note</b>"), ipywidgets.HBox([scatter, ipywidgets.Button()]),
                           lines_b])
    page = standalone_html(box)
    assert "</script> chart" not in page  # the title cannot close the script element early
    parts, bundles = page_data(page)
    assert [part.get("html") or part["state"]["title"] for part in parts] == [
        "first </script> chart", "<b>a note</b>", "map", "second"]
    assert len(bundles) == 2 and parts[0]["bundle"] == parts[3]["bundle"] != parts[2]["bundle"]
    assert bundles[parts[0]["bundle"]] == (STATIC / "lines.js").read_text(encoding="utf-8")
    assert bundles[parts[2]["bundle"]] == (STATIC / "scatter.js").read_text(encoding="utf-8")
    values = np.frombuffer(base64.b64decode(parts[3]["state"]["values"]["view"]["__nm_base64__"]), np.float32)
    np.testing.assert_array_equal(values, np.float32([0.3, 0.4]))  # each widget keeps its own buffers
    assert "cdn" not in page.lower() and "http" not in page.replace("http://www.w3.org", "")


def test_any_result_writes_its_page_and_refuses_to_overwrite_unasked(tmp_path):
    result = planted_probe()
    path = result.to_html(tmp_path / "probe")
    assert path == tmp_path / "probe.html"
    parts, bundles = page_data(path.read_text(encoding="utf-8"))
    assert len(parts) == 1 and parts[0]["state"]["series"][0].endswith("probe")
    before = path.read_bytes()
    with pytest.raises(nm.NeuroMagicsError, match="exists"):
        result.to_html(path)
    assert path.read_bytes() == before
    assert result.to_html(path, overwrite=True) == path
