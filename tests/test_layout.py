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


# -- who may import whom: read off the source (an AST walk, so imports inside functions count) --

#: Never imported by the engine (core and analyses), not even inside a function.
FRONT_END = ("IPython", "ipywidgets", "plotly", "anywidget", "neuro_magics.widgets", "neuro_magics.magics")

#: The declared analysis -> analysis imports (README "Layout", docs/ARCHITECTURE.md); every other
#: analysis imports core only. Two analyses are shared actions any analysis may import: ``diffing``
#: (``compare``, the before/after every model-changing action shows) and ``interventions``
#: (the ablation, steering and mask builders that actions install).
SHARED_ANALYSES = {"diffing", "interventions"}
ANALYSIS_IMPORTS_ALLOWED: dict[str, set[str]] = {
    "editing": {"tracing"},  # ROME's --layer auto is causal tracing's peak, as in the paper
    "lesion": {"networks"},  # the lesion experiment of the networks it is given
}


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` (a module of ``package``) imports anywhere, as absolute names: for
    ``from X import a`` both X and X.a (a may be a submodule), and string literals handed to
    ``importlib.import_module`` / ``__import__``."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            called = ast.unparse(node.func)
            if called.endswith("import_module") or called == "__import__":
                found.add(node.args[0].value)
    return found


def _is_under(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def analysis_sources(root: Path) -> list[tuple[str, Path, str]]:
    """(analysis name, source file, its package) for every analysis: a module ``analyses/x.py``
    or every file of a package ``analyses/x/``."""
    found = []
    for path in sorted((root / "analyses").iterdir()):
        if path.suffix == ".py" and path.stem != "__init__":
            found.append((path.stem, path, "neuro_magics.analyses"))
        elif path.is_dir() and (path / "__init__.py").is_file():
            found += [(path.name, file, f"neuro_magics.analyses.{path.name}") for file in sorted(path.glob("*.py"))]
    return found


def layer_violations(root: Path) -> list[str]:
    """What breaks the layering in the package at ``root``: core importing analyses or the front
    end, an analysis importing the front end, an analysis importing another outside the allow-list
    (a package's files may import each other)."""
    problems = []
    for path in sorted((root / "core").glob("*.py")):
        for module in imported_modules(path, "neuro_magics.core"):
            if _is_under(module, (*FRONT_END, "neuro_magics.analyses")):
                problems.append(f"core/{path.name} imports {module}")
    sources = analysis_sources(root)
    analyses = {name for name, _, _ in sources}
    for name, path, package in sources:
        where = path.relative_to(root).as_posix()
        for module in imported_modules(path, package):
            if _is_under(module, FRONT_END):
                problems.append(f"{where} imports {module}")
            parts = module.split(".")
            if module.startswith("neuro_magics.analyses.") and parts[2] in analyses and parts[2] != name \
                    and parts[2] not in SHARED_ANALYSES | ANALYSIS_IMPORTS_ALLOWED.get(name, set()):
                problems.append(f"{where} imports analyses.{parts[2]} (not in the allow-list)")
    return sorted(set(problems))


def test_core_and_analyses_import_only_what_the_layers_allow():
    assert layer_violations(Path(nm.__file__).parent) == []


def test_the_layer_check_sees_imports_hidden_in_functions(tmp_path):
    """The check itself can fail: each planted import, at top level or inside a function, is named."""
    import shutil

    root = tmp_path / "neuro_magics"
    shutil.copytree(Path(nm.__file__).parent, root, ignore=shutil.ignore_patterns("static", "probes", "__pycache__"))
    assert layer_violations(root) == []
    planted = {
        "core/runner.py": ("def _f():\n    from ..widgets.views import scan_widget\n",
                           "core/runner.py imports neuro_magics.widgets.views"),
        "core/subject.py": ("def _g():\n    from .. import analyses\n", "core/subject.py imports neuro_magics.analyses"),
        "core/programs.py": ("def _h():\n    import plotly.graph_objects\n", "core/programs.py imports plotly.graph_objects"),
        "core/sweep.py": ("def _i():\n    importlib.import_module('neuro_magics.analyses.scanning')\n",
                          "core/sweep.py imports neuro_magics.analyses.scanning"),
        "analyses/generation.py": ("def _j():\n    from IPython.display import display\n",
                                   "analyses/generation.py imports IPython.display"),
        "analyses/weights.py": ("def _k():\n    from .scanning import scan\n",
                                "analyses/weights.py imports analyses.scanning (not in the allow-list)"),
        "analyses/probing.py": ("from . import projection\n",
                                "analyses/probing.py imports analyses.projection (not in the allow-list)"),
        "analyses/sae/training.py": ("def _l():\n    from ..networks import networks\n",
                                     "analyses/sae/training.py imports analyses.networks (not in the allow-list)"),
    }
    for relative, (code, _) in planted.items():
        with open(root / relative, "a", encoding="utf-8") as handle:
            handle.write("\n\n" + code)
    found = layer_violations(root)
    assert {line.split(" imports ")[0] for line in found} == set(planted)
    for _, expected in planted.values():
        assert expected in found


def test_adapter_kinds_have_one_definition():
    """model_diff reads the adapter kinds from core; finetune's own name for them must be the same
    tuple (its owner replaces it by the core one)."""
    from neuro_magics.analyses import finetune, model_diff
    from neuro_magics.core.interventions import ADAPTER_KINDS

    assert finetune.KINDS == ADAPTER_KINDS == model_diff.KIND_ALIASES["adapter"]
