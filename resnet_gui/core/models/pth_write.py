"""PyTorch's checkpoint format written without torch: what `torch.save` writes, loaded by
`torch.load(weights_only=True)` and by pth_read.py alike.

`write_pth(obj, fh)` takes plain values (dicts with string keys, lists, tuples, str, int, float, bool, None) and
numpy arrays, which become tensors: float32, float16, float64, int64, int32, int16, int8, uint8 and bool, each
stored as its own storage, bytes as they are in memory (little-endian). The pickle is protocol 2 with the opcodes
and memo of Python's own pickler, tensors as `torch._utils._rebuild_tensor_v2` of a persistent storage id, as
torch.save makes them. The zip is laid out as torch's writer lays it out (miniz: records `data.pkl`,
`.format_version`, `.storage_alignment`, `byteorder`, `data/<key>`, `version`, `.data/serialization_id` under the
folder `archive/`, each uncompressed, its data aligned to 64 bytes by an "FB" extra field, followed by a data
descriptor; zip64 end records), so torch's offset-calculating mmap loader reads it too. Files up to 4 GiB.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np

FOLDER = "archive"
ALIGNMENT = 64
BATCH = 1000  # items per APPENDS/SETITEMS, as Python's pickler
STORAGES = {"float32": "FloatStorage", "float16": "HalfStorage", "float64": "DoubleStorage", "int64": "LongStorage",
            "int32": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage", "uint8": "ByteStorage",
            "bool": "BoolStorage"}
_LIMIT = 0xFFFFFFFF


class _Pickler:
    """Protocol 2, as `pickle.Pickler(protocol=2)` writes the same values (memo by identity), numpy arrays as
    torch tensors. `storages` collects (key, array) in the order their ids were written."""

    def __init__(self):
        self.out: list[bytes] = []
        self.memo: dict[int, int] = {}
        self.alive: list[Any] = []  # memoized objects stay alive, so their ids stay unique
        self.storages: list[tuple[str, np.ndarray]] = []

    def dumps(self, obj: Any) -> bytes:
        self.out.append(b"\x80\x02")
        self.save(obj)
        self.out.append(b".")
        return b"".join(self.out)

    def _memoize(self, obj: Any) -> None:
        index = len(self.memo)
        self.memo[id(obj)] = index
        self.alive.append(obj)
        self.out.append(b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index))

    def _get(self, obj: Any) -> bool:
        index = self.memo.get(id(obj))
        if index is None:
            return False
        self.out.append(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))
        return True

    def save(self, obj: Any) -> None:
        if obj is None or obj is True or obj is False:
            self.out.append({None: b"N", True: b"\x88", False: b"\x89"}[obj])
        elif isinstance(obj, np.generic) and not isinstance(obj, np.void):
            self.save(obj.item())
        elif type(obj) is int:
            self._int(obj)
        elif type(obj) is float:
            self.out.append(b"G" + struct.pack(">d", obj))
        elif self._get(obj):
            return
        elif type(obj) is str:
            data = obj.encode("utf-8", "surrogatepass")
            self.out.append(b"X" + struct.pack("<I", len(data)) + data)
            self._memoize(obj)
        elif type(obj) is tuple:
            self._tuple(obj)
        elif type(obj) is list:
            self.out.append(b"]")
            self._memoize(obj)
            self._batches(obj, b"a", b"e")
        elif type(obj) in (dict, OrderedDict):
            if type(obj) is OrderedDict:
                self._global("collections", "OrderedDict")
                self.out.append(b")R")
            else:
                self.out.append(b"}")
            self._memoize(obj)
            self._batches(list(obj.items()), b"s", b"u")
        elif isinstance(obj, np.ndarray):
            self._tensor(obj)
        else:
            raise TypeError(f"a checkpoint holds plain values and arrays, not {type(obj).__name__}")

    def _int(self, n: int) -> None:
        if 0 <= n <= 0xFF:
            self.out.append(b"K" + bytes([n]))
        elif 0 <= n <= 0xFFFF:
            self.out.append(b"M" + struct.pack("<H", n))
        elif -0x80000000 <= n <= 0x7FFFFFFF:
            self.out.append(b"J" + struct.pack("<i", n))
        else:
            data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)  # pickle.encode_long
            if len(data) > 255:
                raise ValueError("integers in a checkpoint fit in 255 bytes")
            self.out.append(b"\x8a" + bytes([len(data)]) + data)

    def _tuple(self, items: tuple) -> None:
        if not items:
            self.out.append(b")")
            return
        if len(items) > 3:
            self.out.append(b"(")
        for item in items:
            self.save(item)
        self.out.append(b"t" if len(items) > 3 else b"\x85\x86\x87"[len(items) - 1:len(items)])
        self._memoize(items)

    def _batches(self, items: list, one: bytes, many: bytes) -> None:
        for start in range(0, len(items), BATCH):
            batch = items[start:start + BATCH]
            if len(batch) > 1:
                self.out.append(b"(")
            for item in batch:
                if one == b"a":
                    self.save(item)
                else:
                    if type(item[0]) is not str:
                        raise TypeError(f"checkpoint dictionaries have string keys, not {type(item[0]).__name__}")
                    self.save(item[0])
                    self.save(item[1])
            self.out.append(many if len(batch) > 1 else one)

    def _global(self, module: str, name: str) -> None:
        token = _GLOBALS.setdefault((module, name), (module, name))  # one object per global, memoized by it
        if not self._get(token):
            self.out.append(f"c{module}\n{name}\n".encode())
            self._memoize(token)

    def _tensor(self, array: np.ndarray) -> None:
        dtype = array.dtype.name
        if dtype not in STORAGES:
            raise TypeError(f"a checkpoint stores tensors of {', '.join(STORAGES)}, not {dtype}")
        data = (array if array.flags.c_contiguous else array.copy(order="C")).astype(array.dtype.newbyteorder("<"),
                                                                                     copy=False)
        key = str(len(self.storages))
        self.storages.append((key, data))
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out.append(b"((")
        self.save("storage")
        self._global("torch", STORAGES[dtype])
        self.save(key)
        self.save("cpu")
        self.save(int(data.size))
        self.out.append(b"t")
        self._memoize(("storage", key))  # the persistent id tuple, as Python's pickler memoizes it
        self.out.append(b"Q")
        self.save(0)
        strides, step = [], 1
        for n in reversed(data.shape):
            strides.append(step)
            step *= int(n)
        self.save(tuple(int(n) for n in data.shape))
        self.save(tuple(reversed(strides)))
        self.save(False)
        self.save(OrderedDict())  # backward hooks: none
        self.out.append(b"t")
        self._memoize((key, "args"))
        self.out.append(b"R")
        self._memoize(array)


_GLOBALS: dict[tuple[str, str], tuple[str, str]] = {}


class _Zip:
    """Records written as torch's miniz writer writes them."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.pos, self.entries = fh, 0, []

    def record(self, name: str, data) -> None:
        full = f"{FOLDER}/{name}".encode()
        size = memoryview(data).nbytes
        start = self.pos + 30 + len(full) + 4
        padding = -start % ALIGNMENT
        if self.pos + 30 + len(full) + 4 + padding + size + 16 >= _LIMIT:
            raise ValueError("checkpoints larger than 4 GiB are not written by this writer")
        crc = zlib.crc32(data)
        flags = 0x0808 if size else 0x0800  # bit 3: a data descriptor follows (miniz writes none for no data)
        header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 0, flags, 0, 0, 0, 0, 0, 0, len(full), 4 + padding)
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        descriptor = struct.pack("<4sIII", b"PK\x07\x08", crc, size, size) if size else b""
        self.entries.append((full, flags, crc, size, self.pos))
        for part in (header, full, extra, data, descriptor):
            self.fh.write(part)
        self.pos += len(header) + len(full) + len(extra) + size + len(descriptor)

    def finish(self) -> None:
        digest = hashlib.sha256(b"".join(name + struct.pack("<I", crc) for name, _, crc, _, _ in self.entries))
        self.record(".data/serialization_id", str(int(digest.hexdigest(), 16))[:40].zfill(40).encode())
        start = self.pos
        for name, flags, crc, size, offset in self.entries:
            self.fh.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0, 0, flags, 0, 0, 0, crc, size, size,
                                      len(name), 0, 0, 0, 0, 0, offset) + name)
        end = start + sum(46 + len(name) for name, *_ in self.entries)
        count, length = len(self.entries), end - start
        self.fh.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x031E, 45, 0, 0, count, count, length, start))
        self.fh.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1))
        self.fh.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, length, start, 0))


def write_pth(obj: Any, fh: BinaryIO) -> None:
    """Write `obj` to the binary file `fh` as torch.save(obj, fh) would."""
    pickler = _Pickler()
    pickle = pickler.dumps(obj)
    archive = _Zip(fh)
    archive.record("data.pkl", pickle)
    archive.record(".format_version", b"1")
    archive.record(".storage_alignment", str(ALIGNMENT).encode())
    archive.record("byteorder", b"little")
    for key, data in pickler.storages:
        archive.record(f"data/{key}", data.reshape(-1).view(np.uint8) if data.size else b"")
    archive.record("version", b"3\n")
    archive.finish()
