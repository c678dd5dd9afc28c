"""The attribution view: tokens shaded by attribution, the source x target matrix, the DLA map."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import traitlets

from ._arrays import NDArray, WidgetDataError
from ._strict import StrictAnyWidget

VIEWS = ("tokens", "matrix", "dla")


class AttributionWidget(StrictAnyWidget):
    """Input attributions of one prompt and the direct logit attribution of its first target.

    The method switch (``method``), the explained target (``target_index``: hover a generated
    token), the view (``view``) and a clicked DLA head (``selected_head``: ``[step, head]``)
    sync back to Python. Colours: the shared diverging scale, centred at 0; tokens near 0 keep
    the page's own background, so the text reads in light and dark themes alike.
    """

    _esm = pathlib.Path(__file__).parent.parent / "static" / "attribution.js"

    title = traitlets.Unicode("").tag(sync=True)
    explained = traitlets.Unicode("").tag(sync=True)
    foil = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_prompt = traitlets.Int(0).tag(sync=True)
    targets = traitlets.List(traitlets.Unicode()).tag(sync=True)
    target_positions = traitlets.List(traitlets.Int()).tag(sync=True)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    scores = NDArray("float32", 3)
    dla_heads = NDArray("float32", 2, allow_none=True)
    dla_attn = NDArray("float32", 1, allow_none=True)
    dla_mlp = NDArray("float32", 1, allow_none=True)
    dla_sources = NDArray("float32", 3, allow_none=True)
    dla_summary = traitlets.Dict().tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    method = traitlets.Unicode("").tag(sync=True)
    target_index = traitlets.Int(0).tag(sync=True)
    view = traitlets.Unicode("tokens").tag(sync=True)
    selected_head = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        n_prompt: int,
        targets: Sequence[str],
        target_positions: Sequence[int],
        methods: Sequence[str],
        scores: np.ndarray,
        *,
        title: str = "",
        explained: str = "",
        foil: str | None = None,
        dla_heads: np.ndarray | None = None,
        dla_attn: np.ndarray | None = None,
        dla_mlp: np.ndarray | None = None,
        dla_sources: np.ndarray | None = None,
        dla_summary: Mapping[str, float] | None = None,
        row_labels: Sequence[str] = (),
        view: str = "tokens",
        **kwargs,
    ):
        """
        scores: [methods, targets, sources]; target k is predicted at ``target_positions[k]``.
        foil: the token the target is contrasted with (the header then says "explaining A over B").
        dla_heads: [steps, heads] (None where heads are not split: then dla_attn [steps]);
        dla_mlp: [steps]; dla_sources: [steps, heads, sources]; dla_summary: embed, bias, other, total.
        """
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 3 or scores.shape[:2] != (len(methods), len(targets)):
            raise WidgetDataError(f"scores must be [methods={len(methods)}, targets={len(targets)}, sources], "
                                  f"got shape {scores.shape}")
        if len(target_positions) != len(targets) or any(not 0 <= p < scores.shape[2] for p in target_positions):
            raise WidgetDataError("target_positions needs one source position per target")
        if view not in VIEWS:
            raise WidgetDataError(f"view must be one of {VIEWS}, got {view!r}")
        if dla_mlp is not None and len(row_labels) != len(dla_mlp):
            raise WidgetDataError(f"{len(dla_mlp)} DLA steps but {len(row_labels)} row labels")
        super().__init__(
            title=title, explained=explained, foil=foil, tokens=[str(t) for t in tokens], n_prompt=int(n_prompt),
            targets=[str(t) for t in targets], target_positions=[int(p) for p in target_positions],
            methods=list(methods), scores=scores, dla_heads=dla_heads, dla_attn=dla_attn, dla_mlp=dla_mlp,
            dla_sources=dla_sources, dla_summary={k: float(v) for k, v in (dla_summary or {}).items()},
            row_labels=[str(r) for r in row_labels], method=methods[0] if methods else "", view=view, **kwargs,
        )

    @traitlets.validate("target_index")
    def _check_target(self, proposal):
        value = proposal["value"]
        if not 0 <= value < max(1, len(self.targets)):
            raise WidgetDataError(f"target_index must be below {len(self.targets)}, got {value}")
        return value
