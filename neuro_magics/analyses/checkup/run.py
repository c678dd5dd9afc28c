"""``checkup``: the corpus read, the passes run, the findings read."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...core.corpus import load_corpus
from ...core.distributed import check_workers
from ...core.errors import NeuroMagicsError
from ...core.progress import ProgressBar
from ...core.results import run_metadata
from ...core.subject import Subject, with_lock
from .config import CheckupConfig
from .findings import read_findings
from .passes import corpus_passes, finish
from .result import CheckupResult
from .spectra import weight_spectra


@with_lock
def checkup(
    subject: Subject,
    corpus: str | Sequence[str] | None = None,
    *,
    max_texts: int = 24,
    max_tokens: int = 48,
    batch_size: int = 8,
    spectra: bool = True,
    config: CheckupConfig | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
) -> CheckupResult:
    """Check ``subject`` on ``max_texts`` texts of ``corpus`` (default: the built-in corpus,
    spread over its genres), each cut to ``max_tokens`` tokens. See the module docstring for
    what is found and the thresholds. ``workers``: run the corpus batches on that many Ray
    workers (at ``ray_address``, else a local cluster), each with a copy of the model; same
    numbers, a dead worker's batch re-done (the spectra are computed here). The options may come
    as one ``config`` (a ``CheckupConfig``) instead of keywords, not both; the result's metadata
    records it."""
    if subject.tokenizer is None:
        raise NeuroMagicsError("The checkup reads text: this model has no tokenizer.")
    config = _config(config, {"max_texts": max_texts, "max_tokens": max_tokens, "batch_size": batch_size,
                              "spectra": spectra})
    max_texts, max_tokens, batch_size, spectra = config.max_texts, config.max_tokens, config.batch_size, config.spectra
    if workers is not None and not isinstance(workers, int):
        raise NeuroMagicsError(f"workers must be a whole number of Ray workers (got {workers!r}).")
    check_workers(subject, workers, ray_address)
    loaded = load_corpus(corpus)
    picks = np.unique(np.linspace(0, len(loaded) - 1, min(max_texts, len(loaded))).round().astype(int))
    texts = [loaded.texts[k] for k in picks]
    if subject.context_length is not None:
        max_tokens = min(max_tokens, subject.context_length)
    rows = [ids[:max_tokens] for ids in subject.tokenizer(texts, padding=False)["input_ids"]]
    rows = [row for row in rows if len(row) >= 2]
    if not rows:
        raise NeuroMagicsError("Every text is shorter than two tokens: give longer texts.")
    batches = [rows[k:k + batch_size] for k in range(0, len(rows), batch_size)]
    steps = list(subject.program.steps)
    n_blocks = subject.n_layers
    with ProgressBar(2 * len(batches) + (n_blocks if spectra else 0), "checkup", "pass", leave=False) as bar:
        totals = corpus_passes(subject, batches, bar, workers, ray_address)
        alpha, names = np.full((0, 0), np.nan), []
        if spectra:
            alpha, names = weight_spectra(subject, bar)
    importance = (totals.block_importance / len(rows))[steps]
    n_tokens = int(sum(len(r) for r in rows))
    metadata = run_metadata(subject, texts, corpus=loaded.name, config=config.to_dict(), n_texts=len(rows),
                            n_tokens=n_tokens, max_tokens=max_tokens)
    arrays = {**finish(totals), "importance": importance.astype(np.float32), "alpha": alpha.astype(np.float32)}
    findings = read_findings(arrays, names, steps, totals.massive)
    result = CheckupResult(findings, **arrays, matrix_names=names, program_steps=steps, metadata=metadata)
    result._subject = weakref.ref(subject)
    return result


def _config(config: CheckupConfig | None, keywords: dict[str, Any]) -> CheckupConfig:
    """The one config of a call: ``config`` if given (then every keyword must be left at its
    default), else the keywords checked as a ``CheckupConfig``."""
    if config is None:
        return CheckupConfig(**keywords)
    if not isinstance(config, CheckupConfig):
        raise NeuroMagicsError(f"config must be a CheckupConfig (got {type(config).__name__}).")
    defaults = CheckupConfig()
    changed = [name for name, value in keywords.items() if value != getattr(defaults, name)]
    if changed:
        raise NeuroMagicsError(f"Give the options either as config= or as keywords, not both (got config= and "
                               f"{changed[0]}=): use dataclasses.replace(config, {changed[0]}=...).")
    return config
