"""neuro_magics: an fMRI and an operating theatre for LLMs, in a notebook.

``%load_ext neuro_magics`` registers the magics; everything they do is also a plain
Python function here.
"""

from __future__ import annotations

import importlib

from .errors import NeuroMagicsError
from .loading import DEFAULT_MODEL, load_model
from .programs import LayerProgram
from .results import Result, load_result
from .runner import Capture, Edit, RunInputs, RunOutput, prepare, run, unembed
from .subject import Subject

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Capture",
    "Edit",
    "LayerProgram",
    "NeuroMagicsError",
    "Result",
    "RunInputs",
    "RunOutput",
    "Subject",
    "load_model",
    "load_result",
    "prepare",
    "run",
    "unembed",
]


#: Public functions of the analysis modules, imported on first use so that
#: ``import neuro_magics`` stays fast: name -> module.
_LAZY = {
    "scan": "scanning",
    "duplicate_layers": "surgery",
    "drop_layers": "surgery",
    "set_program": "surgery",
    "save_materialized": "surgery",
    "mergekit_yaml": "surgery",
    "compare": "diffing",
    "generate": "generation",
    "brainscan": "brain_scan",
    "patch": "patching",
    "trace": "tracing",
    "ablate": "interventions",
    "steer": "interventions",
    "active_interventions": "interventions",
    "reset_interventions": "interventions",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'neuro_magics' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
