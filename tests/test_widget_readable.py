"""What the view builders hand the widgets so a view reads at first sight (issue 25): the attribution
header's foil, the attention explorer's hint, the diff's title and what its perplexity is measured on."""

from __future__ import annotations

import pytest

import neuro_magics as nm
from tiny_models import tiny_model, tiny_tokenizer


def attribution_view(widget):
    """The AttributionWidget of a result's view (a VBox when the explorer of its attention patterns comes along)."""
    return widget.children[0] if hasattr(widget, "children") else widget


@pytest.fixture(scope="module")
def subject():
    return nm.Subject(tiny_model("llama"), tiny_tokenizer())


def test_attribution_with_a_foil_says_what_it_is_contrasted_with(subject):
    """The widget gets the foil's token (the header then reads "explaining A over B"); without one it gets None."""
    with_foil = attribution_view(nm.attribute(subject, "abc ab", target="c", foil="d", method="saliency").widget())
    assert with_foil.foil == "d" and with_foil.targets == ["c"]
    plain = attribution_view(nm.attribute(subject, "abc ab", target="c", method="saliency").widget())
    assert plain.foil is None


def test_attention_explorer_mentions_the_dla_map_only_when_there_is_one(subject):
    """Rollout keeps the attention patterns; without a DLA map the explorer must not point at one."""
    result = nm.attribute(subject, "abc ab", target="c", method="rollout")
    box = result.widget()
    explorer = box.children[1]
    has_dla = result.dla_parts is not None
    assert ("DLA map" in explorer.title) == has_dla
    result.dla_parts = None
    assert "DLA map" not in result.widget().children[1].title


def test_diff_title_reads_before_to_after_like_its_columns_and_names_the_perplexity_text(subject):
    from neuro_magics.analyses.diffing import compare, perplexity_text

    ablation = nm.ablate(subject, layers="1", install=False)
    widget = compare(subject, lambda: ablation.applied(subject), ["abc ab"], max_new_tokens=2, label_after="ablate").widget()
    assert widget.labels == ["before", "ablate"]
    assert widget.title.startswith("before → ablate · ")
    assert widget.perplexity_text == perplexity_text() and len(widget.perplexity_text.split()) > 3


def test_an_sae_search_with_no_hit_says_so(subject, monkeypatch):
    """A search that finds no feature names the query and what to try, in the list and the status line."""
    from neuro_magics.widgets.sae import SaeDashboard

    texts = ["abc abd abe", "bca bcd cab", "dab dac dad", "ecb eca ecd"] * 4
    sae = nm.train_sae(subject, layer=1, texts=texts, expansion=1, k=2, steps=2, batch_size=64, progress=False)
    dashboard = SaeDashboard(sae)
    monkeypatch.setattr(sae, "search", lambda query, n: [])  # a planted miss: no feature fires on it
    assert dashboard.search("zebra") == []
    assert dashboard.search_note == dashboard.status == "no feature fires on 'zebra': try another token or a longer text"
    monkeypatch.setattr(sae, "search", lambda query, n: [(1, 0.5)])
    assert dashboard.search("a") == [1] and dashboard.search_note == "features firing most on the held-out token 'a'"


def test_a_network_opens_onto_where_it_lives():
    """The gallery's panel lists a network's neurons per block by descending z, from a planted result."""
    from types import SimpleNamespace

    import numpy as np

    from neuro_magics.widgets.networks import key_neurons

    maps = np.zeros((2, 3, 8), dtype=np.float32)
    maps[1, 0, [5, 2]] = [4.0, 6.5]  # block 3: neuron 2 is the strongest
    maps[1, 2, 7] = 3.9              # block 9
    maps[0, 1, 1] = 9.0              # another network: not listed for network 1
    result = SimpleNamespace(maps=maps, network_masks=maps > 3.6, blocks=[3, 5, 9])
    assert key_neurons(result, 1) == [(3, [(2, 6.5), (5, 4.0)]), (9, [(7, np.float32(3.9).item())])]
    assert key_neurons(result, 1, per_block=1) == [(3, [(2, 6.5)]), (9, [(7, np.float32(3.9).item())])]
    assert key_neurons(result, 0) == [(5, [(1, 9.0)])]
