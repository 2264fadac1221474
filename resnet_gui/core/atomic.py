"""Atomic file writes: a temporary file in the same folder, fsync, then os.replace.

A write that fails halfway (full disk, crash, exception) leaves the previous file untouched and no
temporary file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: os.PathLike | str) -> Iterator[BinaryIO]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: os.PathLike | str, write: Callable[[BinaryIO], None]) -> Path:
    with atomic_writer(path) as fh:
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
