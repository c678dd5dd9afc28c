"""The notebook's progress bar: plain HTML updated in place through a display id.

tqdm's notebook bar is an ipywidget; a saved notebook keeps its reference, and after a
reload (no kernel state) the front end shows "Error displaying widget: model not found"
where the bar was. HTML carries no such reference: a finished bar stays as text (or is
blanked when ``leave`` is false), and the bar still shows the rate and the ETA.
"""

from __future__ import annotations

import html
import time

from IPython.display import HTML, display
from tqdm.std import tqdm

_MIN_INTERVAL = 0.2  # seconds between redraws


class HtmlBar:
    """A bar drawn as ``<progress>`` plus tqdm's meter text (rate and ETA)."""

    def __init__(self, total: int, desc: str, unit: str, leave: bool):
        self.total, self.desc, self.unit, self.leave = total, desc, unit, leave
        self.n, self.postfix = 0, ""
        self._started = self._drawn = time.perf_counter()
        self._handle = display(HTML(self._html()), display_id=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._drawn >= _MIN_INTERVAL or self.n >= self.total:
            self._drawn = now
            self._draw()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text
        if refresh:
            self._draw()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc
        if refresh:
            self._draw()

    def close(self) -> None:
        if self._handle is None:
            return
        if self.leave:
            self._draw()
        else:
            self._handle.update(HTML(""))
        self._handle = None

    def _draw(self) -> None:
        if self._handle is not None:
            self._handle.update(HTML(self._html()))

    def _html(self) -> str:
        meter = tqdm.format_meter(self.n, self.total, time.perf_counter() - self._started, unit=self.unit,
                                  prefix=self.desc, postfix=self.postfix or None, bar_format="{l_bar}{r_bar}")
        return (
            '<div class="neuro-magics-progress" style="display:flex;gap:8px;align-items:center;'
            'font-family:var(--jp-code-font-family, monospace);font-size:12px">'
            f'<progress value="{self.n}" max="{max(self.total, 1)}" style="width:200px"></progress>'
            f"<span>{html.escape(meter)}</span></div>"
        )
