"""The checkup view: findings by severity, each opening onto the array that shows it, with its
action one click away (apply it to the model and show the before/after diff below).

``CheckupWidget`` is the anywidget (also what the standalone HTML report shows, with actions
off); ``CheckupView`` adds the output area the diff lands in.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import ipywidgets
import numpy as np
import traitlets
from IPython.display import display

from ..core.results import register_view
from ._arrays import array_to_json
from ._strict import StrictAnyWidget
from .standalone import write_standalone

#: The result's arrays the widget draws (each finding names one in ``view``).
VIEW_ARRAYS = ("resid_max", "resid_median", "resid_norm", "sink_mass", "entropy", "importance", "head_cosine",
               "neuron_max", "block_influence", "lens_agreement", "alpha")


def _arrays_to_json(arrays: dict[str, np.ndarray], widget=None) -> dict:
    return {name: array_to_json(np.ascontiguousarray(value, dtype=np.float32)) for name, value in arrays.items()}


class CheckupWidget(StrictAnyWidget):
    """``findings`` (dicts of ``Finding``) and the ``arrays`` they point at; a click on a finding's
    action sends ``{"type": "apply", "index": k}``, answered by ``on_apply`` (``status`` says how it goes)."""

    _esm = pathlib.Path(__file__).parent.parent / "static" / "checkup.js"

    findings = traitlets.List(traitlets.Dict()).tag(sync=True)
    arrays = traitlets.Dict().tag(sync=True, to_json=_arrays_to_json)
    matrix_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    actions_enabled = traitlets.Bool(True).tag(sync=True)

    def __init__(self, *, on_apply: Callable[[int, Callable[[str], None]], Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.on_apply = on_apply
        self.on_msg(self._message)

    def report(self, text: str) -> None:
        self.status = text

    def _message(self, widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "apply":
            return
        index = content.get("index")
        if self.on_apply is None:
            self.report(f"finding {index}: no model is attached to this checkup; result.apply({index}, subject=m) "
                        "applies it.")
            return
        try:
            self.on_apply(int(index), self.report)
        except Exception as error:  # a click has no cell to fail: show the problem here
            self.report(f"{type(error).__name__}: {error}")


class CheckupView(ipywidgets.VBox):
    """The findings widget and, below it, the diff of the last action applied."""

    def __init__(self, widget: CheckupWidget, apply: Callable[[int, Callable[[str], None]], Any] | None):
        self.findings = widget
        self.output = ipywidgets.Output(layout=ipywidgets.Layout(min_height="1em"))
        self.diff: Any = None
        self._apply = apply
        widget.on_apply = self._run if apply is not None else None
        super().__init__([widget, self.output])

    def _run(self, index: int, report: Callable[[str], None]) -> None:
        diff = self._apply(index, report)
        self.diff = diff
        with self.output:
            self.output.clear_output(wait=True)
            display(diff)


def checkup_findings_widget(result, *, actions: bool = True) -> CheckupWidget:
    metadata = result.metadata
    return CheckupWidget(
        # the view marks the row of the finding's array: a step, or a block in the weight spectra
        findings=[{**finding.to_dict(), "layer": finding.block if finding.view == "alpha" else finding.step}
                  for finding in result.findings],
        arrays={name: getattr(result, name) for name in VIEW_ARRAYS},
        matrix_names=list(result.matrix_names),
        title=f"Checkup · {metadata.get('model', '')} · {metadata.get('n_texts', '?')} texts of "
              f"{metadata.get('corpus', '?')}, {metadata.get('n_tokens', '?')} tokens",
        actions_enabled=actions,
    )


def checkup_widget(result) -> CheckupView:
    """The live view: actions apply to the checked model under its lock (``queued`` while a cell runs)."""
    live = result.subject is not None
    return CheckupView(checkup_findings_widget(result, actions=live), _apply_and_report(result) if live else None)


def _apply_and_report(result) -> Callable[[int, Callable[[str], None]], Any]:
    from ..core.progress import observe

    def action(index: int, report: Callable[[str], None]):
        subject = result.subject
        if subject is None:
            raise RuntimeError("The model this checkup was made on is not loaded any more: load it and call "
                               f"result.apply({index}, subject=m).")
        title = result.findings[index].title
        if not subject.lock.acquire(blocking=False):
            report(f"{title}: queued, waiting for the running cell or action to finish...")
            subject.lock.acquire()
        try:
            def progress(desc: str, done: int, total: int, elapsed: float) -> None:
                report(f"{title}: {desc} {done}/{total} steps · {elapsed:.1f} s")

            with observe(progress):
                diff = result.apply(index)
        finally:
            subject.lock.release()
        report(f"Applied finding {index} to the model ({subject.interventions[-1].description}); "
               "%reset_interventions or nm.reset_interventions(m) removes it.")
        return diff

    return action


def checkup_html(result, path, *, overwrite: bool = False) -> pathlib.Path:
    """The report as one offline HTML file (actions off: they need the live model)."""
    widget = checkup_findings_widget(result, actions=False)
    try:
        return write_standalone(widget, path, title=f"Checkup · {result.metadata.get('model', '')}",
                                note="A static copy of a neuro_magics checkup: click a finding to see its view. "
                                     "Actions (ablate, fix and diff) run only in a live notebook.",
                                overwrite=overwrite)
    finally:
        widget.close()


register_view("checkup", html=checkup_html)
