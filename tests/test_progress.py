"""Progress bars leave no widget behind, report to observers, and an unloaded model is freed."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from IPython.utils.capture import capture_output

import neuro_magics as nm
from neuro_magics.core import progress
from neuro_magics.widgets.progress import HtmlBar

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def html_bars():
    previous = progress.set_renderer(HtmlBar)
    yield
    progress.set_renderer(previous)


@pytest.fixture
def html_output(shell):
    """The test shell is a terminal one: let it format HTML as a notebook kernel does."""
    formatter = shell.display_formatter.formatters["text/html"]
    enabled, formatter.enabled = formatter.enabled, True
    yield
    formatter.enabled = enabled


def test_a_diff_in_a_notebook_leaves_html_not_a_widget_reference(tiny_in_shell, html_bars, html_output):
    """A saved notebook must not hold a widget model id for a progress bar: after a reload it
    would show "Error displaying widget: model not found"."""
    subject = tiny_in_shell
    with capture_output() as captured:
        nm.compare(subject, lambda: subject.program_applied([0, 1, 1, 2, 3]), ["hello"], max_new_tokens=2)
    bundles = [output.data for output in captured.outputs]
    assert bundles, "the bar was drawn"
    assert all(WIDGET_MIME not in bundle for bundle in bundles)
    assert any("compare" in bundle.get("text/html", "") for bundle in bundles)


def test_an_observer_gets_every_step_and_nothing_is_drawn(html_bars):
    seen = []
    with capture_output() as captured, progress.observe(lambda *step: seen.append(step[:3])):
        with progress.ProgressBar(3, "work", "step") as bar:
            for _ in range(3):
                bar.update()
    assert seen == [("work", 1, 3), ("work", 2, 3), ("work", 3, 3)]
    assert not captured.outputs


def test_html_bar_shows_the_meter_and_blanks_when_not_left(html_output):
    with capture_output() as captured:
        bar = HtmlBar(4, "scan", "row", leave=False)
        bar.set_postfix_str("2/9 configs")
        bar.update(4)
        html = bar._html()
        bar.close()
    assert "4/4" in html and "2/9 configs" in html and 'value="4"' in html
    assert captured.outputs[0].data["text/html"].startswith("<div")


def test_unload_frees_the_model_although_the_output_history_holds_its_subject(tiny_in_shell, shell):
    model = weakref.ref(tiny_in_shell.model)
    shell.run_cell("m = %model", store_history=True)
    shell.run_cell("%model", store_history=True)
    del tiny_in_shell
    shell.run_line_magic("unload_model", "")
    gc.collect()
    assert model() is None
    assert "unloaded" in repr(shell.user_ns["m"])
    with pytest.raises(nm.NeuroMagicsError, match="unload"):
        nm.generate(shell.user_ns["m"], "hello")
    del shell.user_ns["m"]


def test_a_cell_holds_the_model_so_a_widget_action_waits_for_its_end(tiny_in_shell, shell):
    """Between two lines of a running cell another thread (ipykernel 7 handles widget messages on
    one) cannot take the model; after the cell it can."""
    shell.user_ns["m"] = tiny_in_shell
    shell.run_cell(
        "import threading\n"
        "seen = []\n"
        "probe = threading.Thread(target=lambda: seen.append(m.lock.acquire(blocking=False)))\n"
        "probe.start(); probe.join()\n"
    )
    assert shell.user_ns["seen"] == [False]
    def try_lock() -> None:
        got = tiny_in_shell.lock.acquire(blocking=False)
        after.append(got)
        if got:
            tiny_in_shell.lock.release()

    after = []
    probe = threading.Thread(target=try_lock)
    probe.start()
    probe.join()
    assert after == [True]
    del shell.user_ns["m"]


def test_transformers_bars_are_drawn_as_ours(html_bars, html_output, capsys):
    """Transformers' "Loading weights" bar inside our loads: HTML in a notebook, never a widget,
    nothing on stderr (a red box in JupyterLab); outside the block its own bar is back."""
    from transformers.utils import logging

    if not hasattr(logging, "set_tqdm_hook"):  # transformers before the hook: its own bars, untouched
        with progress.transformers_bars():
            bar = logging.tqdm(range(3), desc="Loading weights")
            assert type(bar).__name__ != "_TqdmLike" and list(bar) == [0, 1, 2]
        return
    with capture_output() as captured, progress.transformers_bars():
        assert list(logging.tqdm(range(3), desc="Loading weights")) == [0, 1, 2]
    bundles = [output.data for output in captured.outputs]
    assert bundles and all(WIDGET_MIME not in bundle for bundle in bundles)
    assert any("Loading weights" in bundle.get("text/html", "") for bundle in bundles)
    assert captured.stderr == ""
    assert type(logging.tqdm(range(1))).__name__ != "_TqdmLike"
