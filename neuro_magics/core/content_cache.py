"""Content-addressed storage in the cache folder: a thing written once under a name taken from
its content's SHA-256, so that an intervention can record the path and the digest of what it
reads (an SAE, an adapter) and a replay can check that the file still holds the same thing.

Writes go through ``core.files``: the entry is written beside its place, named only once its
digest is known, and moved in whole (a crash never leaves half an entry); an entry already
there with the same digest is kept as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from .files import move_file_into_place, move_folder_into_place, staged_file, staged_folder
from .loading import cache_dir

#: Hex digits of the digest that name an entry (64 bits: collisions are not a concern here).
KEY_LENGTH = 16


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store(kind: str) -> Path:
    """The cache folder of one kind of entry (``$NEURO_MAGICS_CACHE/<kind>``)."""
    return cache_dir() / kind


def store_file(kind: str, suffix: str, write: Callable[[Path], None], *,
               digest_of: Callable[[Path], str] = file_sha256, prefix: str = "") -> tuple[Path, str]:
    """Write one file with ``write(path)`` and keep it as ``<prefix><key><suffix>`` in the
    ``kind`` store, the key the first ``KEY_LENGTH`` hex digits of ``digest_of`` (default: the
    file's bytes). Returns the entry's resolved path and its full digest."""
    folder = store(kind)
    with staged_file(folder, f"entry{suffix}") as staging:
        write(staging)
        digest = digest_of(staging)
        target = folder / f"{prefix}{digest[:KEY_LENGTH]}{suffix}"
        if not (target.is_file() and digest_of(target) == digest):
            move_file_into_place(staging, target)
    return target.resolve(), digest


def store_folder(kind: str, write: Callable[[Path], None], digest_of: Callable[[Path], str], *,
                 prefix: str = "") -> tuple[Path, str]:
    """Write one folder with ``write(folder)`` and keep it as ``<prefix><key>`` in the ``kind``
    store, the key from ``digest_of(folder)`` (a digest of what in it matters: safetensors files
    are not byte-reproducible; for a folder lacking what it reads it must return another string,
    such as ""). Returns the entry's resolved path and its full digest."""
    root = store(kind)
    with staged_folder(root, "entry") as staging:
        write(staging)
        digest = digest_of(staging)
        target = root / f"{prefix}{digest[:KEY_LENGTH]}"
        if not (target.is_dir() and digest_of(target) == digest):
            move_folder_into_place(staging, target)
    return target.resolve(), digest
