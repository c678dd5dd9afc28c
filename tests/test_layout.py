"""The package's layout for growth: the engine core in one place, one module per analysis,
each group of magics in its own module, and the whole public API visible to nm.<TAB>."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import neuro_magics as nm
from neuro_magics import analyses, core
from neuro_magics.magics import magic_classes


def test_tab_completion_lists_the_lazily_imported_api():
    listed = dir(nm)
    for name in ("scan", "patch", "trace", "brainscan", "compare", "generate", "ablate", "steer", "attribute",
                 "networks", "network_lesion", "mask_network", "edit", "undo_edit", "prune",
                 "duplicate_layers", "load_model", "load_result", "Subject", "run", "prepare", "project", "probe",
                 "language_similarity"):
        assert name in listed, name
        assert callable(getattr(nm, name)), name


def test_the_core_holds_the_engine_and_analyses_hold_one_module_each():
    assert {m.name for m in pkgutil.iter_modules(core.__path__)} >= {
        "adapters", "programs", "subject", "runner", "loading", "results", "errors", "interventions"}
    for module in pkgutil.iter_modules(analyses.__path__):
        source = importlib.import_module(f"{analyses.__name__}.{module.name}")
        assert "ipywidgets" not in vars(source) and "plotly" not in vars(source), module.name


def test_each_magic_lives_in_the_module_of_its_group():
    where = {name: cls.__module__.rsplit(".", 1)[1]
             for cls in magic_classes() for names in cls.magics.values() for name in names}
    assert where["patch"] == "patching"
    assert where["attribute"] == "attribution"
    assert where["generate"] == "generation"
    assert where["ablate"] == where["steer"] == "interventions"
    assert where["duplicate_layers"] == where["drop_layers"] == "layers"
    assert where["brainscan"] == "brainscan" and where["scan"] == "scan"
    assert where["networks"] == "networks"
    assert where["project"] == where["probe"] == "geometry"
    assert where["edit"] == where["prune"] == "neurosurgery"
    assert where["sae"] == "sae"
    assert where["finetune"] == where["diff_models"] == "finetune"


def test_every_magic_has_its_help_under_one_percent_sign(shell):
    """The README promises ``%magic?`` for every magic: IPython finds ``%name?`` only for
    line magics, so a magic used as ``%%name`` must be a line-cell magic."""
    for magic_class in magic_classes():
        for name in magic_class.magics.get("cell", {}):
            assert shell.find_line_magic(name) is not None, f"%{name}? finds nothing"
            assert shell.find_line_magic(name).__doc__, f"%{name} has no docstring"


def test_the_engine_draws_progress_only_through_core_progress():
    """tqdm.auto's notebook bar is a widget a saved notebook cannot show after a reload: engine
    modules report steps to core.progress.ProgressBar, which the front end draws."""
    root = Path(nm.__file__).parent
    for path in [*sorted((root / "analyses").glob("*.py")), *sorted((root / "core").glob("*.py"))]:
        if path.name != "progress.py":
            assert "tqdm" not in path.read_text(encoding="utf-8"), f"{path.name} draws its own tqdm bar"
