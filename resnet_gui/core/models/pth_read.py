"""PyTorch's checkpoint file format, read without torch (docs/checkpoint-format.md, "Reading").

A `.pth` written by torch.save is a zip archive: `<folder>/data.pkl` (the pickled structure, read by
unpickler.py with tensor records in place of tensors), `<folder>/data/<key>` (each storage's raw bytes,
stored uncompressed), `byteorder` ("little" or "big"), `version`. `PthFile(path)` checks the file and its zip
directory before unpacking anything (the same checks safe_load.py runs before torch.load: `check_file`,
`check_archive`), reads data.pkl into `.obj`, and reads a tensor's values only when `.array(ref)` asks:
listing the registry reads data.pkl and the classifier head, nothing else. Every failure is a CheckpointError
whose reason (`reason`) is worded as the torch path words it.
"""
from __future__ import annotations

import mmap
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from ..jsonsafe import TooLarge
from .pickle_globals import DType, MissingRecord, Refused, StorageRef, TensorRef, storage_key
from .unpickler import Unpickler
from .weights import check_layout

# Limits checked before anything is unpacked (see README "Reliability"): the pickle that holds the structure is
# small for any real checkpoint, and torch stores tensor data uncompressed, so a member that inflates far beyond
# the archive's own size is a compression bomb.
MAX_PICKLE_BYTES = 64 * 2**20
INFLATION_SLACK_BYTES = 64 * 2**20
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
LEGACY_MAGIC, LEGACY_VERSION = 0x1950A86A20F9469CFC6C, 1001
_DETAIL = re.compile(r"(Unsupported global: GLOBAL [^\s]+|Unsupported operand \d+|Trying to call [^\n]+|"
                     r"Can only [^\n]+|Unsupported class [^\n]+)")


def too_large(exc: Exception) -> str:
    return (f"its metadata is too large or too deeply nested ({exc}); this is not a normal checkpoint and was not "
            "loaded")


def reason(exc: BaseException) -> str:
    """Why a .pth could not be read, in one phrase (for torch.load's exceptions and this reader's alike)."""
    text = str(exc)
    if isinstance(exc, Refused) or isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        m = _DETAIL.search(text)
        detail = f" ({m.group(1).rstrip('.')})" if m else ""
        return ("refused to load: it contains Python objects or code that a weights-only load does not "
                f"allow{detail}. Only plain tensors and values are accepted")
    if isinstance(exc, TooLarge):
        return too_large(exc)
    if "failed finding central directory" in text or "PytorchStreamReader failed" in text \
            or isinstance(exc, (EOFError, zipfile.BadZipFile, MissingRecord)):
        return "the file is truncated or damaged (not a complete PyTorch archive)"
    if isinstance(exc, (pickle.UnpicklingError, IndexError, KeyError)) or "invalid load key" in text:
        return "not a PyTorch checkpoint (not a zip archive nor a legacy torch file)"
    if isinstance(exc, MemoryError):
        return "the file is too large to load into memory"
    if isinstance(exc, RuntimeError) and "does not match expected size" in text:
        return "the file is damaged: the data stored for a tensor is not the size its description claims"
    if isinstance(exc, RuntimeError) and ("size" in text and "storage" in text or "out of bounds" in text):
        return "the file is damaged: a tensor claims more data than the file holds"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"could not be read ({type(exc).__name__}: {first[:300]})"


def check_file(path: os.PathLike | str) -> tuple[int, bool]:
    """(size, is a zip archive) of a file that may be a checkpoint; CheckpointError for anything that is not."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    is_zip = magic.startswith(b"PK")
    if not is_zip and not magic.startswith(b"\x80"):  # neither a zip archive nor a (legacy) pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (not a zip archive nor a legacy torch file)")
    return size, is_zip


def check_archive(path: os.PathLike | str, size: int) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """The archive's folder and members, from the zip's central directory, before anything is decompressed:
    refuses archives whose members would inflate far beyond the file, duplicate member names, and archives
    that are not PyTorch checkpoints."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{path}: the file is truncated or damaged (not a complete PyTorch archive)") from None
    if not members:
        raise CheckpointError(f"{path}: an empty zip archive, not a PyTorch checkpoint")
    pickles = [m for m in members if m.filename.endswith("/data.pkl") or m.filename == "data.pkl"]
    if not pickles:
        raise CheckpointError(f"{path}: a zip archive without PyTorch data (no data.pkl), not a checkpoint")
    if any(m.file_size > MAX_PICKLE_BYTES for m in pickles):
        raise CheckpointError(f"{path}: its metadata part is larger than {MAX_PICKLE_BYTES // 2**20} MiB when "
                              "unpacked; this is not a normal checkpoint and was not loaded")
    total = sum(m.file_size for m in members)
    if total > size + INFLATION_SLACK_BYTES:
        raise CheckpointError(f"{path}: would unpack to {total / 2**20:,.0f} MiB from a {size / 2**20:,.1f} MiB "
                              "file (a compression bomb); it was not loaded")
    by_name = {m.filename: m for m in members}
    if len(by_name) != len(members):
        twice = next(m.filename for m in members if sum(o.filename == m.filename for o in members) > 1)
        raise CheckpointError(f"{path}: holds two parts named {twice[:80]!r}; this is not a normal checkpoint and "
                              "was not loaded")
    return members[0].filename.split("/", 1)[0], by_name  # torch: the first member's folder names the archive


class PthFile:
    """One checkpoint opened for reading (use it in a `with` block). `.obj`: data.pkl's content, tensors as
    TensorRef; `.array(ref)`: a tensor's values. Also reads PyTorch's legacy format (saved before PyTorch 1.6,
    or with _use_new_zipfile_serialization=False): pickles in a row, then the storages' bytes."""

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        self.size, is_zip = check_file(self.path)
        if is_zip:
            folder, self.members = check_archive(self.path, self.size)
            self.prefix = folder + "/"
        self.storages: dict[str, StorageRef] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.places: dict[str, tuple[int, int]] = {}  # legacy files: storage key -> (offset, bytes)
        self.zip = self.fh = self.map = None
        self.byteorder = "<"
        try:
            self.fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self.obj = self._open_zip() if is_zip else self._open_legacy()
        except CheckpointError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is reported as a CheckpointError
            self.close()
            raise CheckpointError(f"{self.path}: {reason(exc)}") from None

    def __enter__(self) -> PthFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for handle in (self.zip, self.map, self.fh):
            if handle is not None:
                handle.close()

    # ---- the zip format (torch.save since PyTorch 1.6) ------------------------------------------
    def _open_zip(self) -> Any:
        self.zip = zipfile.ZipFile(self.fh)
        if f"{self.prefix}data.pkl" not in self.members:
            raise CheckpointError(f"{self.path}: a zip archive without PyTorch data (no data.pkl), not a checkpoint")
        order = self._record("byteorder", b"little")
        if order not in (b"little", b"big"):
            raise ValueError(f"Unknown endianness type: {order[:20].decode('ascii', 'replace')}")
        self.byteorder = "<" if order == b"little" else ">"
        version = self._record(".data/version", None) or self._record("version", None)
        if version is None or not version.strip().isdigit():
            raise MissingRecord("PytorchStreamReader failed locating file version: file not found")
        return Unpickler(self.zip.read(f"{self.prefix}data.pkl"), self._zip_storage).load()

    def _record(self, name: str, default: bytes | None) -> bytes | None:
        info = self.members.get(self.prefix + name)
        return default if info is None or info.file_size > 64 else self.zip.read(info)

    def _zip_storage(self, dtype: DType, fields: tuple) -> StorageRef:
        """The unpickler's persistent_load of (key, location, numel): the member must exist and hold exactly numel
        elements (checked in the zip directory, nothing read). A key seen before is the same storage, as in
        torch."""
        if len(fields) != 3 or not isinstance(fields[1], (str, bytes)) or type(fields[2]) is not int or fields[2] < 0:
            raise RuntimeError(f"unknown storage {str(fields)[:120]}")
        key, numel = storage_key(fields[0]), fields[2]
        if key not in self.storages:
            info = self.members.get(f"{self.prefix}data/{key}")
            if info is None:
                raise MissingRecord(f"PytorchStreamReader failed locating file data/{key}: file not found")
            expected = numel * dtype.itemsize
            if info.file_size != expected:
                raise RuntimeError(f"record size ({info.file_size} bytes) does not match expected size ({expected} "
                                   f"bytes = {numel} elements * {dtype.itemsize} bytes/element) for dtype {dtype}")
            self.storages[key] = StorageRef(key, dtype, numel)
        return self.storages[key]

    # ---- the legacy format --------------------------------------------------------------------
    def _open_legacy(self) -> Any:
        self.map = data = mmap.mmap(self.fh.fileno(), 0, access=mmap.ACCESS_READ)

        def plain(pos: int) -> tuple[Any, int]:
            unpickler = Unpickler(data, _no_storage, pos)
            return unpickler.load(), unpickler.pos

        magic, pos = plain(0)
        if magic != LEGACY_MAGIC:
            raise RuntimeError("Invalid magic number; corrupt file?")
        version, pos = plain(pos)
        if version != LEGACY_VERSION:
            raise RuntimeError(f"Invalid protocol version: {str(version)[:20]}")
        info, pos = plain(pos)
        if isinstance(info, dict) and info.get("little_endian") is False:
            self.byteorder = ">"
        unpickler = Unpickler(data, self._legacy_storage, pos)
        obj = unpickler.load()
        keys, pos = plain(unpickler.pos)
        if not isinstance(keys, list):
            raise RuntimeError("the list of stored tensors is missing")
        for key in keys:  # each: its element count (int64), then its bytes
            root = self.storages.get(key) if isinstance(key, str) else None
            if root is None:
                raise MissingRecord(f"storage key {str(key)[:40]!r} not found")
            if pos + 8 > self.size:
                raise EOFError("the file ends before its tensor data")
            count = int.from_bytes(data[pos:pos + 8], "little", signed=True)
            if count != root.numel:
                raise RuntimeError(f"storage has wrong byte size: expected {root.numel} got {count}")
            self.places[key] = (pos + 8, count * root.dtype.itemsize)
            pos += 8 + count * root.dtype.itemsize
        if pos > self.size:
            raise EOFError("the file ends inside its tensor data")
        if any(key not in self.places for key in self.storages):
            raise MissingRecord("a tensor's data is missing from the file")
        return obj

    def _legacy_storage(self, dtype: DType, fields: tuple) -> StorageRef:
        """(root key, location, numel, view): a storage, or a view of one (its key, offset, numel)."""
        if len(fields) != 4 or not isinstance(fields[1], (str, bytes)) or type(fields[2]) is not int or fields[2] < 0:
            raise RuntimeError(f"unknown storage {str(fields)[:120]}")
        key, view = storage_key(fields[0]), fields[3]
        root = self.storages.setdefault(key, StorageRef(key, dtype, fields[2]))
        if view is None:
            return root
        if type(view) is not tuple or len(view) != 3 or not all(type(v) is int and v >= 0 for v in view[1:]):
            raise RuntimeError(f"unknown storage view {str(view)[:120]}")
        if view[1] + view[2] > root.numel:
            raise RuntimeError("a storage view is out of bounds for its storage")
        return StorageRef(key, root.dtype, view[2], view[1] * root.dtype.itemsize)

    # ---- tensor data ------------------------------------------------------------------------------
    def array(self, ref: TensorRef, key: str = "tensor", *, keep: bool = True) -> np.ndarray:
        """A dense tensor's values as a numpy array in native byte order (bfloat16 becomes float32); a view of
        its storage when possible (a storage is read once however many tensors share it). keep=False: a storage
        read now is not kept for other tensors (it is freed with the array)."""
        try:
            raw = self.buffers.get(ref.storage.key)
            if raw is None:
                raw = self._read(ref.storage.key)
                if keep:
                    self.buffers[ref.storage.key] = raw
            np_type = ref.dtype.numpy
            item = np.dtype(self.byteorder + np_type if ref.dtype.itemsize > 1 else np_type)
            start = ref.storage.start + ref.offset * item.itemsize
            values = np.ndarray(ref.shape, dtype=item, buffer=raw, offset=start,
                                strides=tuple(s * item.itemsize for s in ref.stride))
            if ref.dtype.name == "bfloat16":
                return (values.astype(np.uint32) << 16).view(np.float32)
            return values if item.isnative else values.astype(item.newbyteorder("="))
        except Exception as exc:  # noqa: BLE001 - a damaged or truncated storage
            raise CheckpointError(f"{self.path}: entry {key!r}: {reason(exc)}") from None

    def _read(self, key: str) -> np.ndarray:
        """A storage's bytes: read straight from the file when stored uncompressed (as torch writes them), else
        unpacked by zipfile (its size was bounded by check_archive)."""
        if key in self.places:
            start, size = self.places[key]
        else:
            info = self.members[f"{self.prefix}data/{key}"]
            if info.compress_type != zipfile.ZIP_STORED:
                return np.frombuffer(self.zip.read(info), dtype=np.uint8)
            self.fh.seek(info.header_offset)
            signature, name_len, extra_len = _LOCAL_HEADER.unpack(self.fh.read(_LOCAL_HEADER.size))
            start, size = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len, info.file_size
            if signature != b"PK\x03\x04" or info.compress_size != size:
                raise zipfile.BadZipFile("a damaged zip entry")
        if start + size > self.size:
            raise EOFError("a tensor's data lies outside the file")
        out = np.empty(size, dtype=np.uint8)
        self.fh.seek(start)
        if self.fh.readinto(memoryview(out)) != size:
            raise EOFError("the file ends inside a tensor's data")
        return out


def _no_storage(dtype: DType, fields: tuple) -> StorageRef:
    raise Refused("unsupported persistent id encountered")


def tensor_checker(path: os.PathLike | str):
    """check_tensor(key, ref) for weights.check_entries: weights.check_layout on a TensorRef."""
    def check(key: str, ref: TensorRef) -> None:
        dtype = ref.dtype.name if ref.dtype is not None else "unknown"
        storage = ref.storage.numel * ref.storage.dtype.itemsize if ref.storage is not None else 0
        check_layout(path, key, kind=ref.kind, dtype=dtype, shape=ref.shape, stride=ref.stride, offset=ref.offset,
                     itemsize=ref.dtype.itemsize if ref.dtype is not None else 1, storage_bytes=storage)
    return check


def is_tensor(value: Any) -> bool:
    return isinstance(value, TensorRef)
