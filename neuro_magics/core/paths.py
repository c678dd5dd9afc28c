"""Where results and exports are written: checked before any work, never overwritten unasked;
and the one way the user's text files are read.

Every writer (``Result.save``, the brain scan's checkpoints, ``save_materialized``,
``mergekit_yaml``) checks its target here first, so a bad path costs one line and no
lost work: an empty path, a folder where a file goes (or the reverse), a path under a
file, a folder that cannot be written, or an existing file that ``overwrite`` does not
allow replacing. The write itself goes through ``files``, which replaces the file or folder
only once the new one is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import NeuroMagicsError


def user_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path (``~`` expanded); an empty path or a non-path is refused."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise NeuroMagicsError(f"{what}: the path is empty; give a file or folder name.")
    return Path(path).expanduser()


def read_user_text(path: Path, save_as: str = "UTF-8") -> str:
    """A user's text file; one line saying how to save it when it is not UTF-8 (``save_as``:
    the format that line asks for)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise NeuroMagicsError(f"{path} is not UTF-8 text (byte {error.start}): save it as {save_as}.") from None


def check_file_target(path: str | os.PathLike, what: str, *, overwrite: bool = False) -> Path:
    """A file can be written at ``path``: not a folder, not under a file, in a folder that
    exists or can be made and is writable; an existing file only with ``overwrite``."""
    target = user_path(path, what)
    if target.is_dir():
        raise NeuroMagicsError(f"{what} {str(target)!r} is a folder: give a file name inside it.")
    if target.exists() and not overwrite:
        raise NeuroMagicsError(f"{what} {str(target)!r} already exists: pick a new name, or ask to overwrite it.")
    _check_writable_parent(target, what)
    return target


def check_folder_target(path: str | os.PathLike, what: str, *, overwrite: bool = False,
                        how: str = "or ask to overwrite it") -> Path:
    """A new folder can be made at ``path`` (or an existing empty one used; a non-empty
    one only with ``overwrite``; ``how``: the refusal's words for asking), under a writable folder."""
    target = user_path(path, what)
    if target.exists() and not target.is_dir():
        raise NeuroMagicsError(f"{what} {str(target)!r} is a file: give a new folder name.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise NeuroMagicsError(f"{what} {str(target)!r} already exists and is not empty: pick a new folder, {how}.")
    _check_writable_parent(target, what)
    return target


def _check_writable_parent(target: Path, what: str) -> None:
    """The nearest existing ancestor must be a folder we may write into (missing folders
    below it are made when writing)."""
    ancestor = target.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NeuroMagicsError(f"{what} {str(target)!r} lies under the file {str(ancestor)!r}: give a path in a folder.")
    try:  # os.access says yes to root even on read-only mounts: try it
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as error:
        raise NeuroMagicsError(f"{what} {str(target)!r}: cannot write in {str(ancestor)!r} "
                               f"({error.strerror or error}); pick a folder you can write to.") from None
