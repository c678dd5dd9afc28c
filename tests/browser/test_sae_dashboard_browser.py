"""The SAE feature dashboard in chromium: the list and the first card render, clicking another
feature's row swaps the card (cards computed up front need no kernel), tokens are coloured by
the feature's activation, and neutral colours follow the light and dark themes."""

import numpy as np
import pytest

import neuro_magics as nm
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = [f"the cat {i} sat on the mat while {i * 7} dogs ran home" for i in range(30)]


@pytest.fixture(scope="module")
def sae():
    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    trained = nm.train_sae(subject, layer=1, texts=TEXTS, expansion=2, k=4, steps=20, batch_size=128, progress=False)
    trained.subject_ref = subject  # keep the model alive for the logit effects
    return trained


def _luminance(css: str) -> float:
    r, g, b = (float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_dashboard_renders_and_selecting_a_feature_swaps_the_card(open_widget, sae, theme):
    view = open_widget(sae.widget(), theme=theme)
    page = view.page
    order = np.argsort(-sae.frequencies, kind="stable")
    assert page.locator(".nm-sae-row").count() == sae.width
    first = page.locator(".nm-sae-row").first
    assert first.get_attribute("data-feature") == str(order[0]) and first.get_attribute("aria-selected") == "true"
    assert page.locator(".nm-sae-card .nm-title").inner_text() == f"Feature {order[0]}"
    dead = int(sae.dead.sum())
    assert page.locator(".nm-sae-row.nm-sae-dead").count() == dead
    assert view.canvas_stats(".nm-sae-histogram")["painted"] > 0
    coloured = page.evaluate("""() => [...document.querySelectorAll('.nm-sae-tok')]
        .filter((s) => s.style.background).length""")
    assert coloured >= len(sae.top_contexts(int(order[0]), 8))
    page.locator(f'.nm-sae-row[data-feature="{order[3]}"]').click()
    assert page.locator(".nm-sae-card .nm-title").inner_text() == f"Feature {order[3]}"
    top = sae.top_contexts(int(order[3]), 1, window=8)[0]
    rounded = float(f"{top['activation']:.3g}")  # 3 significant digits
    assert page.locator(".nm-sae-context .nm-sae-value").first.inner_text() == f"{rounded:g}"
    assert page.locator(f'.nm-sae-row[data-feature="{order[3]}"]').get_attribute("aria-selected") == "true"
    text = page.evaluate("getComputedStyle(document.querySelector('.nm-sae-card')).color")
    plain = page.evaluate("""() => { const s = [...document.querySelectorAll('.nm-sae-tok')].find((s) => !s.style.background);
        return s ? getComputedStyle(s).backgroundColor : 'rgba(0, 0, 0, 0)'; }""")
    assert (_luminance(text) > 150) == (theme == "dark"), text
    assert plain == "rgba(0, 0, 0, 0)"  # a silent token keeps the page's own background
    page.locator(".nm-sae-list input").fill(str(order[5]))
    assert page.locator(".nm-sae-row").first.get_attribute("data-feature").startswith(str(order[5]))
    view.screenshot()
