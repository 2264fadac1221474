"""Atomic file writes: a temporary file in the same folder, fsync, then os.replace (or a hard link
when the target must not be overwritten).

A write that fails halfway (full disk, crash, exception) leaves the previous file untouched and no
temporary file behind; a process killed mid-write leaves a hidden `.<name>.<random>.tmp`, which
`remove_stale_temporaries` deletes at the next start. Files get the permissions of the user's umask
(mkstemp alone would make them 0600).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .names import NAME_MAX_BYTES, fit_bytes

TMP_SUFFIX = ".tmp"
TMP_EXTRA_BYTES = len("." + "." + "x" * 8 + TMP_SUFFIX)  # mkstemp's "." + name + "." + 8 random + ".tmp"
STALE_AFTER_S = 15 * 60
_umask: int | None = None


def _file_mode() -> int:
    """0o666 minus the process umask (read once: os.umask can only be read by setting it)."""
    global _umask
    if _umask is None:
        current = os.umask(0o022)
        os.umask(current)
        _umask = current
    return 0o666 & ~_umask


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (type and errno kept: FileExistsError stays one) naming the file asked for, not the
    hidden temporary file: messages show the filename."""
    return type(exc)(exc.errno, exc.strerror, str(path))


@contextlib.contextmanager
def atomic_writer(path: os.PathLike | str, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Write `path` through a temporary file. overwrite=False raises FileExistsError, leaving the existing
    file untouched, when `path` exists by the time the write completes (exclusive creation)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # the temporary's name holds the target's, shortened so that it fits whatever the target's fits in
        prefix = f".{fit_bytes(path.name, NAME_MAX_BYTES - TMP_EXTRA_BYTES)}."
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if os.name == "posix":
                os.fchmod(fh.fileno(), _file_mode())
            os.fsync(fh.fileno())
        try:
            if overwrite:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # fails with FileExistsError when another writer got there first
        except OSError as exc:  # e.g. the target is a folder
            raise _naming(exc, path) from None
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: os.PathLike | str, write: Callable[[BinaryIO], None], *, overwrite: bool = True) -> Path:
    with atomic_writer(path, overwrite=overwrite) as fh:
        write(fh)
    return Path(path)


def atomic_write_bytes(path: os.PathLike | str, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: os.PathLike | str, *, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete this app's leftover temporary files (`.<name>.<random>.tmp` / `.part`) in `folder` that are older
    than older_than_s (a younger one may belong to a save in progress in another process). Returns how many."""
    import time

    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith((TMP_SUFFIX, ".part"))):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed
