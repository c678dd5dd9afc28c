"""What a fine-tune reads: the user's text (the cell or a file) as equal windows of tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ...core.errors import NeuroMagicsError
from ...core.paths import read_user_text, user_path
from ...core.subject import Subject


def training_chunks(subject: Subject, texts: Sequence[str], context: int) -> torch.Tensor:
    """The texts' tokens (joined by the end-of-sequence token) as equal windows of ``context``
    tokens (fewer when all the text is shorter); the last window ends at the last token."""
    if subject.tokenizer is None:
        raise NeuroMagicsError("This subject has no tokenizer: load the model with its tokenizer to fine-tune.")
    ids: list[int] = []
    eos = subject.tokenizer.eos_token_id
    for k, text in enumerate(texts):
        if k and eos is not None:
            ids.append(int(eos))
        ids += list(subject.tokenizer(text)["input_ids"])
    if len(ids) < 2:
        raise NeuroMagicsError("The text is one token long: give more text to fine-tune on.")
    width = min(context, len(ids))
    starts = list(range(0, len(ids) - width + 1, width))
    if starts[-1] != len(ids) - width:
        starts.append(len(ids) - width)
    return torch.tensor([ids[s:s + width] for s in starts], dtype=torch.long)


def read_texts(text: str | Sequence[str] | None, file: str | Path | None) -> list[str]:
    if (text is None) == (file is None):
        raise NeuroMagicsError("Give the text to fine-tune on either in the cell (text) or with --file, not both.")
    if file is not None:
        path = user_path(file, "--file")
        if not path.is_file():
            raise NeuroMagicsError(f"No file {str(path)!r}: give a UTF-8 text file to fine-tune on.")
        text = read_user_text(path)
    texts = [text] if isinstance(text, str) else [str(t) for t in text]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise NeuroMagicsError("The text is empty: give some text to fine-tune on (the cell, or --file PATH).")
    return texts
