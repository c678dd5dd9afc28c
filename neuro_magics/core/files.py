"""Replacing a user's file or folder so that a crash never loses it: the one way every writer
of the package writes.

The new content is written beside the target under a hidden staging name and moved in by a
rename: a file with ``os.replace``; a folder by exchanging the two folders in one call
(``renameat2(RENAME_EXCHANGE)``, Linux), so that at every instant the path holds either the
old or the new complete folder, and the old one is removed only afterwards. A process killed
part-way (``kill -9``, a dead kernel) leaves the old file or folder as it was, plus a staging
entry whose name records the process that made it; the next write into the same folder removes
the staging entries of processes that are gone. On a file system without the exchange (some
network and FUSE mounts, macOS) a folder is swapped with two renames; a process killed between
them leaves the old folder under its staging name, and the next write into that folder puts it
back where it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import hashlib
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PREFIX = ".nm-"
# staging entries are named .nm-<role>-<pid>-<host tag>-<token>-<target name (cut to fit)>
_STAGING_NAME = re.compile(r"^\.nm-(?P<role>partial|old)-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{8}-(?P<name>.*)$",
                           re.DOTALL)
_NAME_ROOM = 180  # of the 255 bytes a file name may have, what the target's name may use
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def replace_file_text(target: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically: a reader (or a crash) sees the old file or the new one."""
    with replacing_file(target) as staging:
        staging.write_text(text, encoding=encoding)
    return target


@contextmanager
def replacing_file(target: Path) -> Iterator[Path]:
    """A path beside ``target`` to write the new file to; when the block ends without an
    error it replaces ``target`` in one rename, otherwise it is removed and ``target`` is left
    as it was."""
    target = _through_links(target)
    with staged_file(target.parent, target.name) as staging:
        yield staging
        move_file_into_place(staging, target)


@contextmanager
def staged_file(parent: Path, name: str) -> Iterator[Path]:
    """A fresh path in ``parent`` (made if missing) named for this process and ending in
    ``name``, removed when the block ends unless it was moved away; a writer that learns its
    target only after writing (a name from the content's digest) uses this."""
    staging = _staging_path(parent, "partial", name)
    try:
        yield staging
    finally:
        staging.unlink(missing_ok=True)


def move_file_into_place(staging: Path, target: Path) -> None:
    """Flush ``staging`` to the disk and rename it over ``target`` (atomic on one file system)."""
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staging, target)
    _sync_folder(target.parent)


@contextmanager
def replacing_folder(target: Path) -> Iterator[Path]:
    """An empty folder beside ``target`` to write the new folder into; when the block ends
    without an error it takes ``target``'s place (see ``move_folder_into_place``), otherwise it
    is removed and ``target`` is left as it was."""
    target = _through_links(target)
    with staged_folder(target.parent, target.name) as staging:
        yield staging
        move_folder_into_place(staging, target)


@contextmanager
def staged_folder(parent: Path, name: str) -> Iterator[Path]:
    """A fresh empty folder in ``parent`` (made if missing) named for this process and ending
    in ``name``; what is left at its path when the block ends (the staging folder, or the old
    folder it was exchanged with) is removed."""
    staging = _staging_path(parent, "partial", name)
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def move_folder_into_place(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` at ``target``. An existing ``target`` is exchanged
    with it in one rename, so the path is never empty; the old folder is then at ``staging``,
    for the caller to remove. Without the exchange: two renames, the old folder kept under a
    staging name in between (put back if the second rename fails) and removed after."""
    if not target.exists() or _is_empty_folder(target):
        os.replace(staging, target)  # a rename onto a missing path or an empty folder is atomic
    elif not _exchange(staging, target):
        old = _staging_path(target.parent, "old", target.name)
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _sync_folder(target.parent)


# What versions before these staging names left when killed (tempfile.mkdtemp folders and the
# brain scan's partial checkpoint): no process id, so they are removed once older than an hour.
_LEGACY_STAGING = re.compile(r"^\.(materializing|adapter|converting)-[a-z0-9_]{8}$|^\..+\.partial\.npz$")
_LEGACY_AGE_S = 3600


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging entries in ``parent`` left by processes of this machine that are gone
    (killed while writing), and those of earlier versions once an hour old; an old folder whose
    swap was cut between its two renames goes back to its path. Returns what was removed or put
    back."""
    handled = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return handled
    for entry in entries:
        if _LEGACY_STAGING.match(entry.name):
            if _remove_legacy(entry):
                handled.append(Path(entry.path))
            continue
        match = _STAGING_NAME.match(entry.name)
        if match is None or match["host"] != _HOST or _process_alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        original = parent / match["name"]
        try:
            if match["role"] == "old" and not os.path.lexists(original):
                if len(match["name"].encode()) >= _NAME_ROOM:
                    continue  # its name was cut: where it belongs is unknown, so it stays
                os.rename(path, original)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        handled.append(path)
    return handled


def _remove_legacy(entry: os.DirEntry) -> bool:
    try:
        if time.time() - entry.stat(follow_symlinks=False).st_mtime < _LEGACY_AGE_S:
            return False
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    except OSError:
        return False
    return True


# -- the pieces ------------------------------------------------------------------------------------


def _staging_path(parent: Path, role: str, name: str) -> Path:
    """A new staging name in ``parent`` after the stale ones there are cleared."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(parent)
    cut = name.encode()[:_NAME_ROOM].decode(errors="ignore")
    return parent / f"{_PREFIX}{role}-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}-{cut}"


def _through_links(target: Path) -> Path:
    """A symlinked target is replaced where the link points, so the link stays."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (anything uncertain counts as alive)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic rename (Linux ``renameat2``); False where the system or
    the file system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


@functools.cache
def _renameat2():
    """libc's ``renameat2``, or None (not Linux, or a libc without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
