"""ONNX graphs built from checkpoints, kept in the app's cache folder so the next start needs neither `import onnx`
(0.5 s) nor the build (0.2-0.5 s for ResNet-18): the graph is read back as bytes for ONNX Runtime.

An entry is keyed by what the graph is built from (onnx_graph.graph_key: the builder's version, the architecture,
the class count, the preprocessing and every weight's bytes; 0.03 s for ResNet-18), so a graph is found again
for the same weights under any file name, and an entry is never used for other weights, whatever happened to
the file the weights came from (rewritten in place with its old size and time, restored from a backup, a
checkpoint loaded in memory).

The folder is the user's to clear, and anything may be found in it, so an entry is trusted only after checks:
it must be a regular file (a FIFO or a device is never opened for reading: a FIFO would block), no larger than
the graph of those weights can be (`max_bytes`: a link to /dev/zero or a sparse file of gigabytes is not read),
and it must start with MAGIC and the digest of its key and its bytes (garbage, a truncated file or another
model's graph fail this). An entry that fails is replaced by the graph built again. Entries are written
atomically (two processes building at once both end with a whole file); a cache folder that cannot be made or
written only costs speed. The folder is kept under MAX_BYTES by dropping the least recently used entries.
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
MAGIC = b"RGUI-GRAPH-1\n"
DIGEST_BYTES = 32
HEADER_BYTES = len(MAGIC) + DIGEST_BYTES


def _folder() -> Path | None:
    """The cache folder, or None when it cannot be made (its path is a file, a read-only parent...)."""
    from .. import paths

    try:
        folder = paths.cache_dir() / "graphs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as exc:
        log.warning("not caching ONNX graphs: %s", exc)
        return None


def _digest(key: str, data: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(key.encode("ascii", "replace") + b"\0", digest_size=DIGEST_BYTES)
    h.update(data)
    return h.digest()


def load(key: str, max_bytes: int) -> bytes | None:
    """The graph kept under `key`, or None when there is none that passes the checks (a failing entry is
    removed)."""
    from ..paths import read_regular_file

    folder = _folder()
    if folder is None:
        return None
    entry = folder / (key + SUFFIX)
    raw = read_regular_file(entry, HEADER_BYTES + max_bytes, "cached ONNX graph")
    if raw is None:
        if os.path.lexists(entry):
            forget(key)
        return None
    view = memoryview(raw)
    if bytes(view[:len(MAGIC)]) != MAGIC or bytes(view[len(MAGIC):HEADER_BYTES]) != _digest(key, view[HEADER_BYTES:]):
        log.warning("ignoring cached ONNX graph %s: damaged or not the graph of these weights", entry)
        forget(key)
        return None
    try:
        os.utime(entry)  # recently used
    except OSError:
        pass
    return bytes(view[HEADER_BYTES:])


def store(key: str, data: bytes) -> None:
    """Keep `data` under `key` (atomically), then trim the folder; a full or read-only disk only costs speed."""
    from ..atomic import atomic_writer

    folder = _folder()
    if folder is None:
        return
    try:
        with atomic_writer(folder / (key + SUFFIX)) as fh:
            fh.write(MAGIC + _digest(key, data))
            fh.write(data)
        _trim(folder)
    except OSError:
        log.warning("could not cache an ONNX graph", exc_info=True)


def forget(key: str) -> None:
    folder = _folder()
    if folder is None:
        return
    try:
        (folder / (key + SUFFIX)).unlink()  # a link itself, never what it points to
    except OSError:
        pass


def _trim(folder: Path) -> None:
    entries = []
    for entry in folder.glob("*" + SUFFIX):
        try:
            st = entry.lstat()
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


def graph_bytes(key: str | None, build: Callable[[], bytes], max_bytes: int) -> bytes:
    """The serialised graph: from the cache when an entry for `key` passes the checks, else built and stored
    (no cache when `key` is None)."""
    if key is not None:
        cached = load(key, max_bytes)
        if cached:
            return cached
    data = build()
    if key is not None:
        store(key, data)
    return data
