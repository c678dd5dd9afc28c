"""The SAE feature dashboard (sae_vis / Neuronpedia layout): a feature list, and the card of
the chosen feature, computed in the kernel when the browser asks for it.

The list's arrays (frequency, dead) cross as binary buffers; a card is small JSON (token
strings) plus its histogram row in buffers. The cards of the ``PRELOADED`` most frequent
features are computed up front, so a saved notebook still flips between them without a kernel. Choosing a feature, searching, steering and
ablating arrive as comm messages, handled on whatever thread the kernel gives them (a
subshell thread beside a running cell with ipykernel 7): anything that runs the model waits
for the Subject lock, saying "queued" meanwhile.
"""

from __future__ import annotations

import math
import pathlib
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import traitlets

from ._arrays import NDArray
from ._strict import StrictAnyWidget

#: Cards computed up front (the most frequent features).
PRELOADED = 8
#: Contexts shown at the top of a card, and per interval band.
TOP_CONTEXTS = 8
BAND_CONTEXTS = 3
#: Tokens either side of a context's token; logit effects listed per side; histogram bins.
WINDOW = 8
LOGITS = 8
BINS = 30


class SaeDashboard(StrictAnyWidget):
    """Feature list + feature card of a ``SparseAutoencoder``; ``subject`` (held weakly) is
    the model the logit effects read and the steer/ablate buttons act on."""

    _esm = pathlib.Path(__file__).parent.parent / "static" / "sae_dashboard.js"

    frequencies = NDArray("float32", 1)
    dead = NDArray("uint8", 1)
    title = traitlets.Unicode("").tag(sync=True)
    cards = traitlets.List(traitlets.Dict()).tag(sync=True)  # every card computed so far
    selected = traitlets.Int(-1).tag(sync=True)
    hist_counts = NDArray("int32", 2)  # [card, bin], row i for cards[i]
    hist_edges = NDArray("float32", 2)
    status = traitlets.Unicode("").tag(sync=True)
    can_act = traitlets.Bool(False).tag(sync=True)
    steer_coef = traitlets.Float(4.0).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    matches = traitlets.List(traitlets.Int()).tag(sync=True)
    search_note = traitlets.Unicode("").tag(sync=True)

    def __init__(self, sae, *, subject=None, feature: int | None = None, **kwargs):
        frequencies = np.asarray(sae.frequencies, dtype=np.float32)
        super().__init__(frequencies=frequencies, dead=sae.dead.astype(np.uint8), title=_title(sae),
                         hist_counts=np.zeros((0, BINS), dtype=np.int32),
                         hist_edges=np.zeros((0, BINS + 1), dtype=np.float32), can_act=subject is not None, **kwargs)
        self.sae = sae
        self._subject = None if subject is None else weakref.ref(subject)
        self.installed: list[Any] = []  # interventions the buttons installed, in order
        self.on_msg(self._message)
        order = np.argsort(-frequencies, kind="stable")
        for preloaded in order[:PRELOADED]:
            self._add_card(int(preloaded))
        self.show_feature(int(order[0]) if feature is None else feature)

    @property
    def card(self) -> dict[str, Any]:
        """The card shown (of the ``selected`` feature)."""
        return next(card for card in self.cards if card["feature"] == self.selected)

    @property
    def subject(self):
        return None if self._subject is None else self._subject()

    # -- what the messages do ---------------------------------------------------------------

    def show_feature(self, feature: int) -> None:
        """Show the card of ``feature``, computing it first if it is new (its logit effects
        wait for the model's lock)."""
        if not any(card["feature"] == feature for card in self.cards):
            self._add_card(feature)
        self.selected = int(feature)

    def _add_card(self, feature: int) -> None:
        sae = self.sae
        contexts = sae.top_contexts(feature, TOP_CONTEXTS, window=WINDOW)  # checks the feature's range
        bands = sae.quantile_samples(feature, per_band=BAND_CONTEXTS, window=WINDOW)
        counts, edges = sae.histogram(feature, bins=BINS)
        card = {"feature": int(feature), "frequency": float(sae.frequencies[feature]),
                "max_activation": float(sae.max_activations[feature]), "dead": bool(sae.dead[feature]),
                "contexts": contexts, "bands": bands, "top_logits": [], "bottom_logits": [], "logits_note": ""}
        subject = self.subject
        if subject is None:
            card["logits_note"] = "no model attached: sae.logit_effects(subject, feature) reads them"
        else:
            effects = self._with_model(subject, f"feature {feature}",
                                       lambda: sae.logit_effects(subject, feature, LOGITS))
            card["top_logits"], card["bottom_logits"] = effects["top"], effects["bottom"]
        self.hist_counts = np.vstack([self.hist_counts, counts.astype(np.int32)[None]])
        self.hist_edges = np.vstack([self.hist_edges, edges.astype(np.float32)[None]])
        self.cards = [*self.cards, card]

    def search(self, query: str) -> list[int]:
        """Features for ``query``: those firing most on held-out tokens equal to it, else (when
        no held-out token is it) those most active on it as a text (runs the model)."""
        from ..core.errors import NeuroMagicsError

        try:
            found = self.sae.search(query, 50)
            note = f"features firing most on the held-out token {query!r}"
        except NeuroMagicsError:
            subject = self.subject
            if subject is None:
                raise
            found = self._with_model(subject, f"search {query!r}", lambda: self.sae.search_text(subject, query, 50))
            note = f"features most active on the text {query!r}"
        if not found:
            note = f"no feature fires on {query!r}: try another token or a longer text"
        self.search_note = note
        self.matches = [feature for feature, _ in found]
        self.query = query
        self.status = note
        return self.matches

    def act(self, kind: str, feature: int, coef: float | None = None):
        """Steer by ``feature`` (``coef`` units) or ablate it, on the attached model."""
        subject = self.subject
        if subject is None:
            raise ValueError("no model is attached to this dashboard: use sae.steer(subject, ...) / sae.ablate(...)")
        if kind == "steer":
            if coef is None or not math.isfinite(coef):
                raise ValueError("give a finite steering coefficient")
            install = lambda: self.sae.steer(subject, feature, coef)  # noqa: E731
        else:
            install = lambda: self.sae.ablate(subject, feature)  # noqa: E731
        intervention = self._with_model(subject, f"{kind} feature {feature}", install)
        self.installed.append(intervention)
        remove = "%steer --reset" if kind == "steer" else "nm.reset_interventions(m, 'sae_ablate')"
        self.status = f"Installed: {intervention.description}. %model lists it; {remove} removes it."
        return intervention

    def _with_model(self, subject, what: str, work: Callable[[], Any]) -> Any:
        if not subject.lock.acquire(blocking=False):
            self.status = f"{what} queued: waiting for the running cell or action to finish..."
            subject.lock.acquire()
        try:
            return work()
        finally:
            subject.lock.release()

    def _message(self, widget, content: dict[str, Any], buffers) -> None:
        kind = content.get("type")
        try:
            if kind == "select":
                self.show_feature(int(content["feature"]))
            elif kind == "search":
                self.search(str(content["query"]))
            elif kind in ("steer", "ablate"):
                coef = content.get("coef")
                if kind == "steer" and coef is not None:
                    self.steer_coef = float(coef)
                self.act(kind, int(content["feature"]), None if coef is None else float(coef))
        except Exception as error:  # a click has no cell to fail: show the problem in the card
            self.status = f"{type(error).__name__}: {error}"


def _title(sae) -> str:
    shape = f"k={sae.k}" if sae.activation == "topk" else sae.activation
    made = f" · from {sae.source}" if sae.source else ""
    return (f"SAE · {sae.site} at step {sae.step} (block {sae.block}) · {sae.width} features, {shape}{made} · held out: FVU {sae.fvu:.3f}, "
            f"L0 {sae.l0:.1f}, dead {sae.dead_fraction:.1%}, CE {sae.ce_original:.3f} → {sae.ce_spliced:.3f} spliced "
            f"(zero {sae.ce_zero:.3f}) · {sae.metadata.get('model', '')}")
