"""The network gallery's Python side: picking a network fills its panels from the result, and the
mask button masks that network on the model and returns the diff (a loaded result has no model)."""

from __future__ import annotations

import warnings

import numpy as np

import neuro_magics as nm
from neuro_magics.analyses.diffing import DiffResult
from neuro_magics.core.errors import NeuroMagicsWarning
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["The cat sat on the mat and looked at the door.", "x = [i * i for i in range(10)]",
         "Seven times eight is fifty-six."] * 8


def test_picking_a_network_fills_the_panels_and_the_button_masks_it(tmp_path):
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuroMagicsWarning)
        result = nm.networks(subject, TEXTS, components=3, threshold=1.5, progress=False)
    gallery = result.widget()
    np.testing.assert_array_equal(gallery.where.values[0], result.counts)
    gallery.where.selected = [2, 1]
    top = result.top_tokens(2, 1)[0]
    assert gallery.network == 2 and "<b>network 2</b>" in gallery.tokens.value
    assert gallery.text.value == top["text_index"]
    values = gallery.course.values[0]
    np.testing.assert_array_equal(values[2], result.time_course(2, top["text_index"])[1])
    assert np.nanmax(values[2]) == np.float32(top["value"])

    diff = gallery.on_mask(2)
    assert isinstance(diff, DiffResult) and diff.after.label == "mask network 2"
    assert [i.spec["arguments"]["mlp_dims"] for i in subject.interventions] == [
        [[layer, dims] for layer, dims in result.dims_by_block(2).items() if dims]]
    nm.reset_interventions(subject)

    loaded = nm.load_result(result.save(tmp_path / "networks.npz")).widget()
    assert loaded.mask_button.disabled and loaded.on_mask is None
