"""Text corpora that analyses read the model on: the built-in one, the user's lines or files.

The built-in corpus ships with the package (``neuro_magics/probes/networks_*.txt``): five
genres (news-like, encyclopedic, math, code, dialogue) of 100 short texts each, written for
this project, so that functional networks found on it are not one register's quirks.

One rule reads texts everywhere (the built-in files, a cell, a ``.txt`` file): when the text
holds a blank line, texts are the blocks between blank lines (a code snippet or a dialogue
keeps its line breaks); otherwise each non-empty line is one text. A ``.jsonl`` file holds
one ``{"text": ..., "genre": ...}`` object per line (``genre`` optional).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import NeuroMagicsError
from .paths import read_user_text
from .runner import position_ids_for

_DATA = Path(__file__).parent.parent / "probes"

#: The built-in corpus's genres, each one file ``probes/networks_<genre>.txt``.
GENRES = ("news", "encyclopedic", "math", "code", "dialogue")

#: The built-in calibration text (pruning, ROME's key statistics): passages between blank lines.
CALIBRATION_TEXT = _DATA / "calibration_text.txt"

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Corpus:
    """Texts with a label each (the genre, or ``""``); ``name`` says where they came from."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def split_texts(text: str) -> list[str]:
    """Blank-line separated blocks when the text has a blank line, else one text per line."""
    text = text.replace("\r\n", "\n").strip("\n")
    pieces = _BLANK_LINE.split(text) if _BLANK_LINE.search(text) else text.split("\n")
    return [piece.strip("\n").rstrip() for piece in pieces if piece.strip()]


def builtin_corpus(genres: Sequence[str] | None = None) -> Corpus:
    """The built-in corpus (all genres, or the ones named), genre by genre."""
    chosen = list(GENRES if genres is None else genres)
    unknown = [genre for genre in chosen if genre not in GENRES]
    if unknown:
        raise NeuroMagicsError(f"Unknown genre {unknown[0]!r}: the built-in corpus has {', '.join(GENRES)}.")
    texts, labels = [], []
    for genre in chosen:
        found = split_texts((_DATA / f"networks_{genre}.txt").read_text(encoding="utf-8"))
        texts += found
        labels += [genre] * len(found)
    name = "builtin" if genres is None else "builtin:" + ",".join(chosen)
    return Corpus(name, tuple(texts), tuple(labels))


def load_corpus(corpus: str | Path | Sequence[str] | None = None) -> Corpus:
    """``None`` or ``"builtin"``: the built-in corpus; ``"builtin:math,code"``: some of its
    genres; a path to a ``.txt`` or ``.jsonl`` file; or a list of texts."""
    if corpus is None or (isinstance(corpus, str) and corpus.strip() == "builtin"):
        return builtin_corpus()
    if isinstance(corpus, str) and corpus.startswith("builtin:"):
        return builtin_corpus([g.strip() for g in corpus.removeprefix("builtin:").split(",") if g.strip()])
    if isinstance(corpus, (str, Path)):
        return _read_file(Path(corpus).expanduser())
    texts = [str(text) for text in corpus if str(text).strip()]
    if not texts:
        raise NeuroMagicsError("The corpus is empty: give at least one non-empty text.")
    return Corpus("custom", tuple(texts), ("",) * len(texts))


def _read_file(path: Path) -> Corpus:
    if not path.is_file():
        raise NeuroMagicsError(
            f"No corpus file {str(path)!r}: give a .txt file (texts separated by blank lines, or one per line), "
            "a .jsonl file of {\"text\": ...} lines, or builtin.")
    content = read_user_text(path)
    if path.suffix == ".jsonl":
        texts, labels = [], []
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise NeuroMagicsError(f"{path}:{number} is not a {{\"text\": ...}} JSON line.") from None
            if not isinstance(text, str):
                raise NeuroMagicsError(f"{path}:{number}: \"text\" must be a string.")
            if text.strip():
                texts.append(text)
                labels.append(str(record.get("genre", "")))
    else:
        texts = split_texts(content)
        labels = [""] * len(texts)
    if not texts:
        raise NeuroMagicsError(f"The corpus file {path} holds no text: write at least one.")
    return Corpus(path.name, tuple(texts), tuple(labels))


def calibration_passages(corpus: str = "builtin") -> list[str]:
    """The passages (separated by blank lines) of the built-in calibration text or of a text file."""
    if corpus == "builtin":
        text = CALIBRATION_TEXT.read_text(encoding="utf-8")
    else:
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise NeuroMagicsError(f"No corpus file {str(path)!r}: give a text file, or --corpus builtin.")
        text = read_user_text(path)
    passages = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not passages:
        raise NeuroMagicsError(f"The corpus {corpus!r} is empty: give some text to calibrate on.")
    return passages


#: Calibration passages per forward (left-padded, attention-masked, explicit positions).
CALIBRATION_BATCH = 8


def calibration_batches(subject, passages: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The passages' token ids, each cut to the model's context, as ``(ids, attention_mask)``
    batches of ``CALIBRATION_BATCH``, left-padded, in order of length (little padding). Run each
    with ``calibration_forward``; a hook counts a batch's real tokens by its mask."""
    limit = subject.context_length
    rows = sorted((list(subject.tokenizer(p)["input_ids"])[:limit] for p in passages), key=len)
    return [subject.left_padded(rows[start:start + CALIBRATION_BATCH])
            for start in range(0, len(rows), CALIBRATION_BATCH)]


def calibration_forward(subject, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """One HF forward of a left-padded calibration batch: the mask and positions that skip the
    padding, so each passage reads as it would alone."""
    subject.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask), use_cache=False)
