"""The checkup report as one standalone HTML file, opened from disk in headless Chromium: it
renders every finding, opens a finding onto its painted view, shows its action disabled, and
makes no request at all beyond the file itself (no CDN, no network); also in a dark OS theme."""

from __future__ import annotations

import pytest
import torch

from neuro_magics import Subject
from neuro_magics.analyses.checkup import checkup
from conftest import ARTIFACTS
from tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["The cat sat on the mat and looked at the dog across the room.",
         "The weather was cold, so we stayed inside and read old books."]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.embed_tokens.weight[tiny_tokenizer().convert_tokens_to_ids("T"), 5] = 400.0
        model.model.layers[1].mlp.gate_proj.weight[17] = 0.0
    result = checkup(Subject(model, tiny_tokenizer(), name="tiny-llama"), TEXTS)
    path = result.to_html(tmp_path_factory.mktemp("report") / "checkup.html")
    return result, path


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_standalone_report_renders_offline(browser, report, scheme):
    result, path = report
    context = browser.new_context(viewport={"width": 1000, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-rendered='true']", timeout=20_000)
        titles = page.locator(".nm-finding-title").all_inner_texts()
        assert titles == [f.title for f in result.findings]
        severities = page.locator(".nm-severity").all_inner_texts()
        assert severities == [f.severity for f in result.findings]
        assert severities[:2] == ["medium", "medium"]
        massive = next(k for k, f in enumerate(result.findings) if f.kind == "massive_activation")
        finding = page.locator(".nm-finding").nth(massive)
        assert finding.locator(".nm-finding-head button.nm-action").is_visible()  # the action shows before the row opens
        finding.locator(".nm-finding-title").click()
        painted = page.evaluate(
            """(index) => {
                const canvas = document.querySelectorAll('.nm-finding')[index].querySelector('canvas');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < data.length; i += 4) painted += data[i] > 0;
                return painted;
            }""", massive)
        assert painted > 100
        button = finding.locator("button.nm-action")
        assert button.is_disabled() and "set to their mean" in button.inner_text()
        assert "Actions" in page.locator(".nm-static-note").inner_text()
        # severity badges coloured by severity (amber for medium), the same in either theme
        badge = page.evaluate("getComputedStyle(document.querySelector('.nm-severity-medium')).backgroundColor")
        assert badge == "rgb(249, 168, 37)"
        page.screenshot(path=str(ARTIFACTS / f"checkup-report-{scheme}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors
    assert [url for url in requests if not url.startswith(("file:", "blob:", "data:"))] == []
    assert [url for url in requests if url.startswith("file:")] == [path.as_uri()]
