"""ONNX graphs built from checkpoints, kept in the app's cache folder so the next start needs neither `import onnx`
(0.5 s) nor the build (0.2-0.5 s for ResNet-18): the graph is read back as bytes for ONNX Runtime.

An entry is keyed by the checkpoint file's identity (resolved path, size, modification time in ns, inode) and the
graph builder's version: any rewrite of the checkpoint (training, an edit, a rename) makes a new key, so a stale
graph is never used. Entries are written atomically; an entry that cannot be read or loaded is built again and
replaced. The folder is kept under MAX_BYTES by dropping the least recently used entries.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
MAX_BYTES = 2 * 2**30
SUFFIX = ".onnx"


def _folder() -> Path:
    from .. import paths

    folder = paths.cache_dir() / "graphs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def key_of(checkpoint: os.PathLike | str, builder_version: int) -> str | None:
    """The cache key of `checkpoint`'s current file, or None when it is not a regular file."""
    try:
        path = Path(checkpoint).resolve()
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    ident = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{builder_version}"
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()


def load(key: str) -> bytes | None:
    entry = _folder() / (key + SUFFIX)
    try:
        data = entry.read_bytes()
        os.utime(entry)  # recently used
        return data
    except OSError:
        return None


def store(key: str, data: bytes) -> None:
    """Keep `data` under `key` (atomically), then trim the folder; a full or read-only disk only costs speed."""
    from ..atomic import atomic_write_bytes

    try:
        atomic_write_bytes(_folder() / (key + SUFFIX), data)
        _trim()
    except OSError:
        log.warning("could not cache an ONNX graph", exc_info=True)


def forget(key: str) -> None:
    try:
        (_folder() / (key + SUFFIX)).unlink()
    except OSError:
        pass


def _trim() -> None:
    entries = []
    for entry in _folder().glob("*" + SUFFIX):
        try:
            st = entry.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= MAX_BYTES:
            break
        try:
            entry.unlink()
            total -= size
        except OSError:
            pass


def graph_bytes(checkpoint: os.PathLike | str | None, builder_version: int, build: Callable[[], bytes]) -> tuple[
        bytes, str | None]:
    """(the serialised graph, its cache key or None): from the cache when this checkpoint file's graph is there,
    else built and stored."""
    key = key_of(checkpoint, builder_version) if checkpoint is not None else None
    if key is not None:
        cached = load(key)
        if cached:
            return cached, key
    data = build()
    if key is not None:
        store(key, data)
    return data, key
