"""neuro_magics: an fMRI and an operating theatre for LLMs, in a notebook.

``%load_ext neuro_magics`` registers the magics; everything they do is also a plain
Python function here.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from .core.errors import NeuroMagicsError
from .core.fidelity import Fidelity, check_fidelity
from .core.loading import DEFAULT_MODEL, load_model
from .core.programs import LayerProgram
from .core.results import Result, install_loaders, load_result
from .core.runner import Capture, Edit, RunInputs, RunOutput, prepare, run, unembed
from .core.subject import Subject

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Capture",
    "Edit",
    "Fidelity",
    "LayerProgram",
    "NeuroMagicsError",
    "Result",
    "RunInputs",
    "RunOutput",
    "Subject",
    "check_fidelity",
    "load_model",
    "load_result",
    "prepare",
    "run",
    "unembed",
]


#: Public functions of the analysis modules, imported on first use so that
#: ``import neuro_magics`` stays fast: name -> module.
_LAZY = {
    "scan": "analyses.scanning",
    "duplicate_layers": "analyses.surgery",
    "drop_layers": "analyses.surgery",
    "set_program": "analyses.surgery",
    "save_materialized": "analyses.surgery",
    "mergekit_yaml": "analyses.surgery",
    "compare": "analyses.diffing",
    "generate": "analyses.generation",
    "brainscan": "analyses.brain_scan",
    "patch": "analyses.patching",
    "trace": "analyses.tracing",
    "attribute": "analyses.attribution",
    "ablate": "analyses.interventions",
    "mask_network": "analyses.interventions",
    "mask_mlp_dims": "analyses.interventions",
    "networks": "analyses.networks",
    "network_lesion": "analyses.lesion",
    "steer": "analyses.interventions",
    "project": "analyses.projection",
    "language_similarity": "analyses.projection",
    "probe": "analyses.probing",
    "edit": "analyses.editing",
    "undo_edit": "analyses.editing",
    "prune": "analyses.pruning",
    "weight_views": "analyses.weights",
    "quantize": "analyses.quantization",
    "train_sae": "analyses.sae",
    "load_sae": "analyses.sae",
    "SaeTrainingConfig": "analyses.sae",
    "finetune": "analyses.finetune",
    "FinetuneConfig": "analyses.finetune",
    "load_adapter": "analyses.finetune",
    "save_adapter": "analyses.finetune",
    "merge_adapters": "analyses.finetune",
    "unmerge_adapters": "analyses.finetune",
    "adapters_off": "analyses.finetune",
    "adapters_on": "analyses.finetune",
    "remove_adapters": "analyses.finetune",
    "diff_models": "analyses.model_diff",
    "checkup": "analyses.checkup",
    "active_interventions": "core.interventions",
    "reset_interventions": "core.interventions",
}


__all__ += sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'neuro_magics' has no attribute {name!r}")


def __dir__() -> list[str]:
    """``nm.<TAB>`` lists the whole API, the lazily imported functions included."""
    return sorted({*globals(), *__all__})


def _import_result_kinds() -> None:
    """Import every analysis module: each declares its result kinds and intervention rebuilders
    on import (what ``load_result`` and ``replay`` look up)."""
    from . import analyses

    for module in pkgutil.iter_modules(analyses.__path__):
        if not module.name.startswith("_"):  # an analysis may be a package (analyses/sae, checkup, finetune)
            importlib.import_module(f"{analyses.__name__}.{module.name}")


def _import_views() -> None:
    """Import the widgets layer's view modules: each registers its views per result kind."""
    from .widgets import VIEW_MODULES

    for name in VIEW_MODULES:
        importlib.import_module(f".widgets.{name}", __name__)


# The facade wires the layers together: core finds result classes and views through these,
# never by importing analyses or widgets itself.
install_loaders(kinds=_import_result_kinds, views=_import_views)


def _draw_progress_in_notebook() -> None:
    """Inside a Jupyter kernel, draw engine progress bars as HTML (widgets.progress)."""
    if "ipykernel" not in sys.modules:
        return
    from IPython import get_ipython

    if getattr(get_ipython(), "kernel", None) is not None:
        from .core.progress import set_renderer
        from .widgets.progress import HtmlBar

        set_renderer(HtmlBar)


_draw_progress_in_notebook()


def load_ipython_extension(ipython) -> None:
    from .magics import load_ipython_extension as load

    _draw_progress_in_notebook()
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
