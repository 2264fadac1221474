"""ONNX graphs built from checkpoints, kept in the app's cache folder so the next start needs neither `import onnx`
(0.5 s) nor the build (0.2-0.5 s for ResNet-18): ONNX Runtime loads the entry straight from its file.

An entry is keyed by what the graph is built from (onnx_graph.graph_key: the builder's version, the architecture,
the class count, the preprocessing and the weights' fingerprint, which the loaded checkpoint computed once from
every weight), so a graph is found again for the same weights under any file name, and an entry is never used
for other weights, whatever happened to the file the weights came from (rewritten in place with its old size and
time, restored from a backup, a checkpoint loaded in memory).

The folder is the user's to clear, and anything may be found in it, so an entry is trusted only after checks:
it must be a regular file (a FIFO or a device is never opened for reading: a FIFO would block), no larger than
the graph of those weights can be (`max_bytes`: a link to /dev/zero or a sparse file of gigabytes is not read),
and it must end with TRAILER_BYTES holding MAGIC and the digest of its key and the graph's bytes (garbage, a
truncated file or another model's graph fail this; the digest is computed reading the file in chunks, so
checking an entry holds no copy of the graph). The trailer is a protobuf field that ONNX's ModelProto does not
define (number FIELD), which protobuf parsers skip: the entry is an ONNX file as it stands, and ONNX Runtime
reads it by its path, so the graph's bytes never sit in Python's memory (a ResNet-18 at 224 peaks 47 MB lower
than handing the runtime the bytes). An entry that fails is replaced by the graph built again. Entries are
written atomically (two processes building at once both end with a whole file: the same bytes for the same
key); a cache folder that cannot be made or written only costs speed. The folder is kept under MAX_BYTES by
dropping the least recently used entries.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
MAX_BYTES = 2 * 2**30
SUFFIX = ".onnx"
MAGIC = b"RGUI-GRAPH-2\n"
DIGEST_BYTES = 32
FIELD = 1_988_017    # a ModelProto field number ONNX does not use (its own are below 30)
CHUNK = 1 << 20


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TAG = _varint(FIELD << 3 | 2) + _varint(len(MAGIC) + DIGEST_BYTES)  # a length-delimited field
TRAILER_BYTES = len(_TAG) + len(MAGIC) + DIGEST_BYTES


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


def _hasher(key: str):
    return hashlib.blake2b(key.encode("ascii", "replace") + b"\0", digest_size=DIGEST_BYTES)


def _trailer(key: str, data: bytes | memoryview) -> bytes:
    h = _hasher(key)
    h.update(data)
    return _TAG + MAGIC + h.digest()


def load(key: str, max_bytes: int) -> Path | None:
    """The file of the graph kept under `key` (for ONNX Runtime to read), or None when there is none that passes
    the checks (a failing entry is removed)."""
    from ..paths import open_regular_file

    folder = _folder()
    if folder is None:
        return None
    entry = folder / (key + SUFFIX)
    try:
        with open_regular_file(entry, TRAILER_BYTES + max_bytes, "cached ONNX graph") as opened:
            sound = opened is not None and _sound(key, *opened)
    except OSError as exc:
        log.warning("ignoring cached ONNX graph %s: %s", entry, exc.strerror or exc)
        sound = False
    if not sound:
        if os.path.lexists(entry):
            log.warning("ignoring cached ONNX graph %s: damaged or not the graph of these weights", entry)
            forget(key)
        return None
    try:
        os.utime(entry)  # recently used
    except OSError:
        pass
    return entry


def _sound(key: str, fh, size: int) -> bool:
    """Whether the open entry of `size` bytes is a graph with the trailer of `key` and its bytes."""
    if size <= TRAILER_BYTES:
        return False
    h, left = _hasher(key), size - TRAILER_BYTES
    while left:
        chunk = fh.read(min(CHUNK, left))
        if not chunk:
            return False
        h.update(chunk)
        left -= len(chunk)
    return fh.read(TRAILER_BYTES + 1) == _TAG + MAGIC + h.digest()


def store(key: str, data: bytes) -> Path | None:
    """Keep `data` under `key` (atomically), then trim the folder; its file, or None when a full or read-only
    disk kept it from being stored (that only costs speed)."""
    from ..atomic import atomic_writer

    folder = _folder()
    if folder is None:
        return None
    entry = folder / (key + SUFFIX)
    try:
        with atomic_writer(entry) as fh:
            fh.write(data)
            fh.write(_trailer(key, data))
        _trim(folder)
    except OSError:
        log.warning("could not cache an ONNX graph", exc_info=True)
        return None
    return entry


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
