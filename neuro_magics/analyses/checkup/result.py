"""The checkup's result: per-step arrays, the findings read off them, and their actions."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import NeuroMagicsError
from ...core.interventions import Intervention
from ...core.results import Result
from ...core.subject import Subject
from .config import SEVERITIES
from .findings import Finding
from .fixes import action_intervention, install_with_diff


@dataclass(repr=False, eq=False)
class CheckupResult(Result):
    """Per-step and per-head statistics over the corpus and the findings read from them.

    Arrays (L program steps, H heads): ``resid_max [L, d]`` max ``|h|`` per dim, ``resid_median
    [L]`` (each batch's median ``|h|``, averaged with the batches' token counts as weights),
    ``resid_norm [L]`` mean norm without the first token, ``first_norm [L]`` the first
    token's; ``sink_mass, entropy, importance [L, H]``; ``head_cosine [L, H, H]``; ``neuron_max,
    neuron_mean, neuron_std [L, N]``; ``block_influence [L]``; ``lens_agreement [L]``; ``alpha
    [blocks, matrices]``.
    """

    kind = "checkup"

    findings: list[Finding]
    resid_max: np.ndarray
    resid_median: np.ndarray
    resid_norm: np.ndarray
    first_norm: np.ndarray
    sink_mass: np.ndarray
    entropy: np.ndarray
    importance: np.ndarray
    head_cosine: np.ndarray
    neuron_max: np.ndarray
    neuron_mean: np.ndarray
    neuron_std: np.ndarray
    block_influence: np.ndarray
    lens_agreement: np.ndarray
    alpha: np.ndarray
    matrix_names: list[str]
    program_steps: list[int]
    metadata: dict[str, Any]
    _subject: weakref.ReferenceType[Subject] | None = field(default=None, init=False)

    ARRAYS = ("resid_max", "resid_median", "resid_norm", "first_norm", "sink_mass", "entropy", "importance",
              "head_cosine", "neuron_max", "neuron_mean", "neuron_std", "block_influence", "lens_agreement", "alpha")

    @property
    def subject(self) -> Subject | None:
        """The model checked, while it is loaded (None after loading from a file)."""
        subject = None if self._subject is None else self._subject()
        return None if subject is None or subject.released else subject

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def to_pandas(self):
        """One row per finding."""
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.findings],
                            columns=list(Finding.__dataclass_fields__))

    def to_numpy(self) -> np.ndarray:
        return self.sink_mass

    def apply(self, index: int, *, mode: str | None = None, subject: Subject | None = None,
              prompts: Sequence[str] | None = None, max_new_tokens: int = 16):
        """Install finding ``index``'s action on the model and return its before/after diff
        (``nm.compare``). ``mode`` overrides a massive-activation fix's ``mean`` / ``zero``.
        The diff and the install are one step under the model's lock; a failure installs nothing."""
        if not isinstance(index, int) or not 0 <= index < len(self.findings):
            raise NeuroMagicsError(f"No finding {index!r}: this checkup has findings 0-{len(self.findings) - 1}.")
        finding = self.findings[index]
        if finding.action is None:
            raise NeuroMagicsError(f"Finding {index} ({finding.title}) has no action: it is for reading.")
        subject = subject or self.subject
        if subject is None:
            raise NeuroMagicsError("The model this checkup was made on is not loaded (unloaded, or the result came "
                                   "from a file): load it and pass subject=.")
        if subject.name != self.metadata.get("model") or subject.n_layers != self.metadata.get("n_layers"):
            raise NeuroMagicsError(f"This checkup is of {self.metadata.get('model')}; that model is {subject.name}.")
        with subject.lock:
            intervention = self.action_intervention(index, subject, mode=mode)
            return install_with_diff(subject, intervention, prompts, max_new_tokens=max_new_tokens)

    def action_intervention(self, index: int, subject: Subject, *, mode: str | None = None) -> Intervention:
        """The (not installed) intervention behind finding ``index``'s action."""
        return action_intervention(self.findings[index].action or {}, subject, mode=mode)

    def __repr__(self) -> str:
        counts = self.counts()
        lines = [f"CheckupResult({self.metadata.get('model', '?')}, {self.metadata.get('n_texts', '?')} texts, "
                 f"{self.metadata.get('n_tokens', '?')} tokens): {counts['high']} high, {counts['medium']} medium, "
                 f"{counts['info']} info"]
        lines += [f"  {k}. [{f.severity}] {f.title}" for k, f in enumerate(self.findings)]
        return "\n".join(lines)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def _fields(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "matrix_names": self.matrix_names,
                "program_steps": self.program_steps}

    @classmethod
    def _rebuild(cls, arrays: dict[str, np.ndarray], fields: dict[str, Any], metadata: dict[str, Any]) -> CheckupResult:
        steps = list(fields["program_steps"])
        return cls([Finding.from_dict(f, steps) for f in fields["findings"]], *(arrays[name] for name in cls.ARRAYS),
                   list(fields["matrix_names"]), list(fields["program_steps"]), metadata)
