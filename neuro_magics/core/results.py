"""Results are data: every analysis returns one of these.

A result keeps its arrays as numpy, knows the metadata of the run that made it
(model, program, prompts, dtype, library versions), saves to one ``.npz`` file that
``load_result`` reads back, and shows itself as its widget in a notebook. Results are
plain data: their views (widget, figure, HTML page) are functions the widgets layer registers
per result kind (``register_view``). Core never imports that layer: when a view or a result
class is missing, it calls the loaders the top-level package installs (``install_loaders``),
so the engine never loads IPython, ipywidgets or plotly until a view is asked for.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .errors import NeuroMagicsError
from .files import replacing_file
from .paths import check_file_target, user_path

_REGISTRY: dict[str, type[Result]] = {}

#: kind -> view name ("widget", "figure", "html") -> function(result, ...) drawing it.
_VIEWS: dict[str, dict[str, Callable[..., Any]]] = {}

#: What imports the modules that fill the two registries; set by ``install_loaders``.
_loaders: dict[str, Callable[[], None]] = {}


def register_view(kind: str, **views: Callable[..., Any]) -> None:
    """Say how a result kind is drawn (``widget=``, ``figure=``, ``html=``): the widgets layer
    calls this on import, so results find their views without core knowing that layer. Kind
    ``"*"`` serves every kind without that view of its own (the HTML page of any widget)."""
    _VIEWS.setdefault(kind, {}).update(views)


def install_loaders(*, kinds: Callable[[], None], views: Callable[[], None]) -> None:
    """Set what imports every result class (``kinds``) and every view (``views``) on demand:
    the package facade installs both, so a result loaded in a fresh process finds its class and
    its view while core imports neither layer."""
    _loaders.update(kinds=kinds, views=views)


def load_all_kinds() -> None:
    """Import every module that declares a result kind or an intervention rebuilder."""
    if "kinds" in _loaders:
        _loaders["kinds"]()


def view_of(result: Result, view: str) -> Callable[..., Any]:
    """The function drawing ``result``'s ``view``, loading the view modules once if it is not
    registered yet; a kind without it is refused in one line."""
    if view not in _VIEWS.get(result.kind, {}) and "views" in _loaders:
        _loaders["views"]()
    draw = _VIEWS.get(result.kind, {}).get(view)
    if draw is None and "widget" in _VIEWS.get(result.kind, {}):
        draw = _VIEWS.get("*", {}).get(view)
    if draw is None:
        raise NeuroMagicsError(f"No {view} for {result.kind!r} results; use .to_numpy() or .to_pandas().")
    return draw


def run_metadata(subject, prompts: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Facts that make a result reproducible and comparable: among them the subject's whole
    state, its layer program, every active intervention and every parked one (the specs
    ``replay`` rebuilds)."""
    import torch
    import transformers

    from .. import __version__

    return {
        "model": subject.name,
        "architecture": type(subject.model).__name__,
        "n_layers": subject.n_layers,
        "program": list(subject.program.steps),
        "interventions": [intervention.spec for intervention in subject.interventions],
        "parked": [intervention.spec for intervention in subject.parked],
        "fidelity_at_load": None if subject.fidelity is None else subject.fidelity.to_dict(),
        "prompts": list(prompts or []),
        "dtype": str(subject.dtype).removeprefix("torch."),
        "device": str(subject.device),
        "versions": {
            "neuro_magics": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


class Result:
    """Base of all results. Subclasses set ``kind`` and implement the three hooks below;
    the widgets layer registers how each ``kind`` is drawn (``register_view``)."""

    kind: ClassVar[str] = ""
    metadata: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    # -- what a subclass provides ------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        """The numeric content, saved losslessly."""
        raise NotImplementedError

    def _fields(self) -> dict[str, Any]:
        """Everything else needed to rebuild the result (JSON-serialisable)."""
        raise NotImplementedError

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> Result:
        raise NotImplementedError

    # -- shared behaviour --------------------------------------------------------------

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the result to one ``.npz`` file (arrays + JSON fields + metadata); an
        existing file is replaced only with ``overwrite=True``, in one rename once the new file
        is complete, so an interrupted save leaves the old one whole."""
        path = user_path(path, "save")
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        check_file_target(path, "save", overwrite=overwrite)
        return self.replace_file(path)

    def replace_file(self, path: Path) -> Path:
        """Replace exactly ``path`` (no ``.npz`` added, no overwrite check) with this result, in
        one rename once the new file is complete: a checkpoint a long sweep rewrites as it goes."""
        try:
            with replacing_file(path) as staging:
                self._write_npz(staging)
        except OSError as error:
            raise NeuroMagicsError(f"Could not write {str(path)!r}: {error.strerror or error}.") from None
        return path

    def _write_npz(self, path: Path) -> None:
        """The arrays, the JSON fields and the metadata as one ``.npz`` file at ``path``."""
        header = json.dumps({"kind": self.kind, "fields": self._fields(), "metadata": self.metadata})
        arrays = {f"array_{name}": value for name, value in self._arrays().items()}
        with open(path, "wb") as handle:
            np.savez_compressed(handle, __header__=np.array(header), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Result:
        result = load_result(path)
        if cls.kind and not isinstance(result, cls):
            raise NeuroMagicsError(f"{path} holds a {result.kind} result, not a {cls.kind} result.")
        return result

    def replay_plan(self) -> ReplayPlan:
        """What ``replay`` would re-apply (prints as a list), without applying anything."""
        return ReplayPlan.from_metadata(self.metadata)

    def replay(self, subject) -> ReplayPlan:
        """Put ``subject`` in the state this result was made in: its layer program and exactly
        its interventions, active and parked (others are removed), rebuilt from the recorded specs. For a diff,
        that is the "before" side. Refuses, changing nothing, for another model."""
        return self.replay_plan().apply(subject)

    # -- views (registered by the widgets layer, loaded only now) ------------------------

    def widget(self):
        """The interactive view (an anywidget, or a box of them)."""
        return view_of(self, "widget")(self)

    def to_html(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """One HTML file of the result's view that opens offline (no CDN, no kernel), to send or
        keep beside a paper; written whole or not at all."""
        return view_of(self, "html")(self, path, overwrite=overwrite)

    def figure(self, *args: Any, **kwargs: Any):
        """A plotly figure for papers; arguments depend on the kind (a scan takes the metric)."""
        return view_of(self, "figure")(self, *args, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget()._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        return {**bundle, "text/plain": repr(self)}


@dataclass(frozen=True)
class ReplayPlan:
    """The model state a result's metadata records: its model, layer program and interventions
    (active, and parked: switched off but kept)."""

    model: str
    n_layers: int
    program: tuple[int, ...]
    interventions: tuple[dict[str, Any], ...]
    parked: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ReplayPlan:
        missing = [key for key in ("model", "n_layers", "program", "interventions") if key not in metadata]
        if missing:
            raise NeuroMagicsError(
                f"This result does not record its {' and '.join(missing)} (saved by an older neuro_magics): "
                "it cannot be replayed exactly.")
        return cls(metadata["model"], int(metadata["n_layers"]), tuple(metadata["program"]),
                   tuple(metadata["interventions"]), tuple(metadata.get("parked", ())))  # older results park nothing

    def lines(self) -> list[str]:
        """One line per thing re-applied: the program, then each intervention in order."""
        from .programs import LayerProgram

        program = LayerProgram(self.program, self.n_layers)
        lines = [f"layer program: {'identity' if program.is_identity else program} ({len(program)} steps)"]
        lines += [f"{k}. {spec['kind']}: {spec['description']}" for k, spec in enumerate(self.interventions, 1)]
        if not self.interventions:
            lines.append("no interventions")
        lines += [f"parked {k}. {spec['kind']}: {spec['description']} (off)" for k, spec in enumerate(self.parked, 1)]
        return lines

    def apply(self, subject) -> ReplayPlan:
        """Make ``subject``'s state exactly this one (all or nothing)."""
        from .interventions import rebuild
        from .programs import LayerProgram

        if subject.name != self.model or subject.n_layers != self.n_layers:
            raise NeuroMagicsError(
                f"This result was made with {self.model} ({self.n_layers} layers), not {subject.name} "
                f"({subject.n_layers} layers): load that model to replay it.")
        with subject.lock:
            interventions = [rebuild(subject, spec) for spec in self.interventions]
            parked = [rebuild(subject, spec) for spec in self.parked]
            subject.set_state(LayerProgram(self.program, self.n_layers), interventions, parked)
        return self

    def __repr__(self) -> str:
        return "\n".join([f"Replay on {self.model} ({self.n_layers} layers):", *(f"  {line}" for line in self.lines())])


def load_result(path: str | Path) -> Result:
    """Read back any saved result; anything else is refused in one line."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise NeuroMagicsError(f"not a neuro_magics result: {path!r} is not a path; give the file a result was saved to.")
    path = Path(path).expanduser()
    if not path.is_file():
        raise NeuroMagicsError(f"No file {str(path)!r}: give the path a result was saved to.")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise _NotAResult("it is a plain .npy array, not a saved result (.npz)")
        with data:
            if "__header__" not in data.files:
                raise _NotAResult("the .npz has no neuro_magics header")
            header = json.loads(str(data["__header__"]))
            arrays = {key[len("array_"):]: data[key] for key in data.files if key.startswith("array_")}
    except _NotAResult as error:
        raise NeuroMagicsError(f"not a neuro_magics result: {path}: {error}.") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        detail = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        if path.stat().st_size == 0:
            detail = "the file is empty"
        elif "allow_pickle" in detail:  # numpy's guess for any file that is neither .npz nor .npy
            detail = "it is not a .npz file"
        raise NeuroMagicsError(f"not a neuro_magics result: {path} is not a saved result ({detail}).") from None
    if not isinstance(header, dict) or not isinstance(header.get("fields"), dict) or not isinstance(
            header.get("metadata"), dict):
        raise NeuroMagicsError(f"not a neuro_magics result: {path}: its header is not a JSON object with "
                               "kind, fields and metadata.")
    kind = header.get("kind")
    if kind not in _REGISTRY:
        load_all_kinds()
    if kind not in _REGISTRY:
        raise NeuroMagicsError(f"{path} holds an unknown result kind {kind!r}; upgrade neuro_magics.")
    try:
        return _REGISTRY[kind]._rebuild(arrays, header["fields"], header["metadata"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise NeuroMagicsError(f"not a neuro_magics result: {path}: its {kind} data is incomplete "
                               f"({type(error).__name__}: {error}).") from None


class _NotAResult(Exception):
    """Why a readable file is still not a saved result."""

