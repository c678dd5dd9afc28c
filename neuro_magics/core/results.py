"""Results are data: every analysis returns one of these.

A result keeps its arrays as numpy, knows the metadata of the run that made it
(model, program, prompts, dtype, library versions), saves to one ``.npz`` file that
``load_result`` reads back, and shows itself as its widget in a notebook. The engine
never imports widgets at module level: they are built only when displayed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import NeuroMagicsError
from .paths import check_file_target, user_path

_REGISTRY: dict[str, type[Result]] = {}


def run_metadata(subject, prompts: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Facts that make a result reproducible and comparable."""
    import torch
    import transformers

    from .. import __version__

    return {
        "model": subject.name,
        "architecture": type(subject.model).__name__,
        "n_layers": subject.n_layers,
        "program": list(subject.program.steps),
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
    """Base of all results. Subclasses set ``kind`` and implement the four hooks below."""

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

    def widget(self):
        """The interactive view (an anywidget)."""
        raise NotImplementedError

    # -- shared behaviour --------------------------------------------------------------

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the result to one ``.npz`` file (arrays + JSON fields + metadata); an
        existing file is replaced only with ``overwrite=True``."""
        path = user_path(path, "save")
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        check_file_target(path, "save", overwrite=overwrite)
        header = json.dumps({"kind": self.kind, "fields": self._fields(), "metadata": self.metadata})
        arrays = {f"array_{name}": value for name, value in self._arrays().items()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                np.savez_compressed(handle, __header__=np.array(header), **arrays)
        except OSError as error:
            raise NeuroMagicsError(f"Could not write {str(path)!r}: {error.strerror or error}.") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> Result:
        result = load_result(path)
        if cls.kind and not isinstance(result, cls):
            raise NeuroMagicsError(f"{path} holds a {result.kind} result, not a {cls.kind} result.")
        return result

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget()._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        return {**bundle, "text/plain": repr(self)}


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
        raise NeuroMagicsError(f"not a neuro_magics result: {path} is not a saved result ({detail}).") from None
    if not isinstance(header, dict) or not isinstance(header.get("fields"), dict) or not isinstance(
            header.get("metadata"), dict):
        raise NeuroMagicsError(f"not a neuro_magics result: {path}: its header is not a JSON object with "
                               "kind, fields and metadata.")
    kind = header.get("kind")
    if kind not in _REGISTRY:
        _import_result_modules()
    if kind not in _REGISTRY:
        raise NeuroMagicsError(f"{path} holds an unknown result kind {kind!r}; upgrade neuro_magics.")
    try:
        return _REGISTRY[kind]._rebuild(arrays, header["fields"], header["metadata"])
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise NeuroMagicsError(f"not a neuro_magics result: {path}: its {kind} data is incomplete "
                               f"({type(error).__name__}: {error}).") from None


class _NotAResult(Exception):
    """Why a readable file is still not a saved result."""


def _import_result_modules() -> None:
    """Result classes register themselves on import; load them all before dispatching."""
    import importlib
    import pkgutil

    from .. import analyses

    for module in pkgutil.iter_modules(analyses.__path__):
        if not module.ispkg and not module.name.startswith("_"):
            importlib.import_module(f"{analyses.__name__}.{module.name}")
