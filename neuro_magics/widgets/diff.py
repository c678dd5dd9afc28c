"""A before/after diff: continuations side by side, first divergence, top-k, log-prob change, stats."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget

STAT_KEYS = ("label", "perplexity", "depth", "parameters", "program")


class DiffWidget(StrictAnyWidget):
    """Greedy continuations of each prompt before and after a change.

    Tokens of the original (before) continuation are coloured by how much the change moved
    their log-prob; the first token where the two continuations part is marked. Clicking a
    prompt (``selected``, synced back to Python) shows both next-token top-k lists.
    """

    _esm = pathlib.Path(__file__).parent.parent / "static" / "diff.js"

    title = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.List(traitlets.Unicode(), minlen=2, maxlen=2).tag(sync=True)
    prompts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    pieces_before = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    pieces_after = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    divergence = traitlets.List(traitlets.Int()).tag(sync=True)
    logprob_before = NDArray("float32", 2)
    logprob_after = NDArray("float32", 2)
    topk_pieces_before = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    topk_pieces_after = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    topk_probs = NDArray("float32", 3)
    stats = traitlets.List(traitlets.Dict(), minlen=2, maxlen=2).tag(sync=True)
    pending = traitlets.List(traitlets.Int()).tag(sync=True)  # prompts whose after side is still generating
    perplexity_text = traitlets.Unicode("").tag(sync=True)  # the text both perplexities are measured on
    selected = traitlets.Int(-1).tag(sync=True)

    def __init__(
        self,
        prompts: Sequence[str],
        pieces: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]],
        divergence: Sequence[int],
        logprobs: tuple[np.ndarray, np.ndarray],
        topk_pieces: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]],
        topk_probs: tuple[np.ndarray, np.ndarray],
        stats: tuple[Mapping, Mapping],
        *,
        title: str = "",
        selected: int = -1,
        pending: Sequence[int] = (),
        **kwargs,
    ):
        """
        pieces: (before, after) continuations as token strings, one list per prompt.
        divergence: per prompt, the first position where the continuations differ (-1: equal).
        logprobs: (before, after) [prompts, tokens] log-prob of the *before* continuation, NaN past its end.
        topk_pieces / topk_probs: (before, after) next-token candidates [prompts, k] after each prompt.
        stats: (before, after) dicts with label, perplexity, depth, parameters, program.
        pending: prompts whose after continuation is still being generated (drawn as "…").
        """
        super().__init__(**self._checked_traits(prompts, pieces, divergence, logprobs, topk_pieces, topk_probs, stats,
                                        title, pending), selected=selected, **kwargs)

    def update(self, prompts, pieces, divergence, logprobs, topk_pieces, topk_probs, stats, *, title: str = "",
               pending: Sequence[int] = ()) -> None:
        """Show another (or a more complete, streamed) diff in place, in one message."""
        traits = self._checked_traits(prompts, pieces, divergence, logprobs, topk_pieces, topk_probs, stats, title, pending)
        with self.hold_sync():
            if self.selected >= len(traits["prompts"]):
                self.selected = -1
            for name, value in traits.items():
                setattr(self, name, value)

    @staticmethod
    def _checked_traits(prompts, pieces, divergence, logprobs, topk_pieces, topk_probs, stats, title, pending) -> dict:
        """The synced traits for these inputs, checked for consistency."""
        n = len(prompts)
        logprobs = tuple(np.asarray(a, dtype=np.float32) for a in logprobs)
        topk = np.stack([np.asarray(a, dtype=np.float32) for a in topk_probs])
        checks = {
            "pieces (before)": len(pieces[0]), "pieces (after)": len(pieces[1]), "divergence": len(divergence),
            "logprobs": logprobs[0].shape[0], "top-k": topk.shape[1],
        }
        wrong = {name: size for name, size in checks.items() if size != n}
        if wrong:
            raise WidgetDataError(f"{n} prompts but {wrong}: every per-prompt input needs one entry per prompt")
        if logprobs[0].shape != logprobs[1].shape:
            raise WidgetDataError(f"logprobs before/after differ in shape: {logprobs[0].shape} vs {logprobs[1].shape}")
        if [len(row) for row in topk_pieces[0]] != [topk.shape[2]] * n:
            raise WidgetDataError(f"topk_pieces must hold {topk.shape[2]} tokens per prompt like topk_probs")
        if any(len(row) > logprobs[0].shape[1] for row in pieces[0]):
            raise WidgetDataError("a before continuation is longer than the logprobs rows")
        stats = [_stat(s) for s in stats]
        if any(not 0 <= p < n for p in pending):
            raise WidgetDataError(f"pending must list prompt indices below {n}, got {list(pending)}")
        return dict(
            title=title,
            labels=[stats[0]["label"], stats[1]["label"]],
            prompts=[str(p) for p in prompts],
            pieces_before=[[str(t) for t in row] for row in pieces[0]],
            pieces_after=[[str(t) for t in row] for row in pieces[1]],
            divergence=[int(d) for d in divergence],
            logprob_before=logprobs[0],
            logprob_after=logprobs[1],
            topk_pieces_before=[[str(t) for t in row] for row in topk_pieces[0]],
            topk_pieces_after=[[str(t) for t in row] for row in topk_pieces[1]],
            topk_probs=topk,
            stats=stats,
            pending=[int(p) for p in pending],
        )

    @traitlets.validate("selected")
    def _check_selected(self, proposal):
        value = proposal["value"]
        if not -1 <= value < len(self.prompts):
            raise WidgetDataError(f"selected must be -1 or a prompt index below {len(self.prompts)}, got {value}")
        return value


def _stat(spec: Mapping) -> dict:
    unknown = set(spec) - set(STAT_KEYS)
    missing = set(STAT_KEYS) - set(spec)
    if unknown or missing:
        raise WidgetDataError(f"stats need exactly the keys {STAT_KEYS}; missing {sorted(missing)}, unknown {sorted(unknown)}")
    return {
        "label": str(spec["label"]),
        "perplexity": float(spec["perplexity"]),
        "depth": int(spec["depth"]),
        "parameters": int(spec["parameters"]),
        "program": str(spec["program"]),
    }
