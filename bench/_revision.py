"""The hot-path benches time a module as it was at an earlier commit beside the current one, in
the same process: ``module_at("main", "neuro_magics/analyses/model_diff.py")`` loads that file's
text from git as a sibling module of the current package (its relative imports read today's core)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def module_at(revision: str, path: str) -> ModuleType:
    """``path`` (a module of the package) as committed at ``revision``."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], check=True,
                            capture_output=True, text=True).stdout
    package = ".".join(Path(path).with_suffix("").parts[:-1])
    name = f"{package}._at_{revision.replace('-', '_').replace('.', '_')}_{Path(path).stem}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    module.__file__ = f"{revision}:{path}"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def best_cpu_times(cases: list[tuple[str, object]], repeats: int) -> list[float]:
    """Best process CPU time of ``repeats`` per case after a warm-up round, the cases interleaved so
    that load from other processes on a shared machine falls on all of them alike."""
    times: list[list[float]] = [[] for _ in cases]
    for round_ in range(repeats + 1):
        for i, (_, work) in enumerate(cases):
            started = time.process_time()
            work()
            if round_:
                times[i].append(time.process_time() - started)
    return [min(t) for t in times]
