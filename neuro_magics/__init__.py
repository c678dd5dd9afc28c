"""neuro_magics: an fMRI and an operating theatre for LLMs, in a notebook.

``%load_ext neuro_magics`` registers the magics; everything they do is also a plain
Python function here.
"""

from __future__ import annotations

from .errors import NeuroMagicsError
from .loading import DEFAULT_MODEL, load_model
from .programs import LayerProgram
from .runner import Capture, Edit, RunInputs, RunOutput, prepare, run, unembed
from .subject import Subject

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Capture",
    "Edit",
    "LayerProgram",
    "NeuroMagicsError",
    "RunInputs",
    "RunOutput",
    "Subject",
    "load_model",
    "prepare",
    "run",
    "unembed",
]


def load_ipython_extension(ipython) -> None:
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
