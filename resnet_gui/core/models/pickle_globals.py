"""The globals a weights-only checkpoint pickle may name, and the records they build; no torch import.

This is the table of torch's own weights-only unpickler (`torch/_weights_only_unpickler.py`,
`_get_allowed_globals`) for plain data and tensors: containers (OrderedDict, Counter, set, bytearray, complex,
bytes), `torch.Size`, `torch.device`, dtypes, storage types, and the tensor rebuild functions. Nothing is imported
or called from torch: a global is a `Marker` whose value, when a REDUCE may call it, is one of the functions
below, which check their arguments and build inert records -- `TensorRef` for a tensor (checked against its
`StorageRef`: the storage holds what shape, strides and offset claim, as torch's `set_` checks), plain Python
values for the rest. Quantized, sparse, meta, nested tensors become TensorRefs of that kind, refused by
weights.py with the torch path's message. Anything else is `Refused` in torch's wording.
"""
from __future__ import annotations

import _compat_pickle
import re
from collections import Counter, OrderedDict
from typing import Any

MAX_DIMS = 64
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")  # torch names storages "0", "1", ...: no dots, no slashes
BLOCKED_MODULES = ("sys", "os", "posix", "nt")  # as torch: never allowed, named in the refusal
_SCALARS = (str, bytes, int, float, bool, type(None))


class Refused(Exception):
    """The pickle holds something a weights-only load does not allow; str(exc) is torch's wording."""


class MissingRecord(LookupError):
    """A persistent id names tensor data the file does not hold."""


class DType:
    """A torch dtype by name; `numpy` is the numpy type of the dtypes read as arrays (None: refused later)."""
    __slots__ = ("name", "itemsize", "numpy")

    def __init__(self, name: str, itemsize: int, numpy: str | None):
        self.name, self.itemsize, self.numpy = name, itemsize, numpy

    def __str__(self) -> str:
        return f"torch.{self.name}"

    __repr__ = __str__


_SUPPORTED = {"float32": (4, "f4"), "float64": (8, "f8"), "float16": (2, "f2"), "bfloat16": (2, "u2"),
              "int64": (8, "i8"), "int32": (4, "i4"), "int16": (2, "i2"), "int8": (1, "i1"), "uint8": (1, "u1"),
              "bool": (1, "b1")}
_OTHERS = {"complex64": 8, "complex128": 16, "complex32": 4, "bcomplex32": 4, "qint8": 1, "quint8": 1, "qint32": 4,
           "quint4x2": 1, "quint2x4": 1, "uint16": 2, "uint32": 4, "uint64": 8, "bits8": 1, "bits16": 2,
           "bits1x8": 1, "bits2x4": 1, "bits4x2": 1, "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2": 1,
           "float8_e5m2fnuz": 1, "float8_e8m0fnu": 1, "float4_e2m1fn_x2": 1,
           **{f"{s}int{n}": 1 for s in ("", "u") for n in range(1, 8)}}
DTYPES = {**{n: DType(n, size, np_type) for n, (size, np_type) in _SUPPORTED.items()},
          **{n: DType(n, size, None) for n, size in _OTHERS.items()}}
_STORAGES = {"Float": "float32", "Double": "float64", "Half": "float16", "BFloat16": "bfloat16", "Long": "int64",
             "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8", "Bool": "bool",
             "ComplexFloat": "complex64", "ComplexDouble": "complex128", "QInt8": "qint8", "QUInt8": "quint8",
             "QInt32": "qint32", "QUInt4x2": "quint4x2", "QUInt2x4": "quint2x4"}


class Marker:
    """An allowed global: `value` is the function a REDUCE calls, a storage type's DType, or None (inert)."""
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any = None):
        self.name, self.value = name, value

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


class StorageRef:
    """A storage named by a persistent id: numel elements of dtype in the data stored under `key`, from byte
    `start` (legacy files' views of a bigger storage; 0 otherwise)."""
    __slots__ = ("key", "dtype", "numel", "start")

    def __init__(self, key: str, dtype: DType, numel: int, start: int = 0):
        self.key, self.dtype, self.numel, self.start = key, dtype, numel, start


class TensorRef:
    """A tensor as the pickle describes it. kind: "dense", or what torch would have made instead ("quantized",
    "sparse (sparse_coo)", "meta (it holds no data)", "nested", "unsupported"), refused by weights.py."""
    __slots__ = ("storage", "offset", "shape", "stride", "dtype", "kind")

    def __init__(self, storage: StorageRef | None, offset: int, shape: tuple, stride: tuple, dtype: DType | None,
                 kind: str = "dense"):
        self.storage, self.offset, self.shape, self.stride, self.dtype, self.kind = \
            storage, offset, shape, stride, dtype, kind

    def __repr__(self) -> str:
        return f"<tensor {'x'.join(map(str, self.shape)) or 'scalar'} {self.dtype}>"


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > MAX_DIMS or not all(type(v) is int for v in value):
        raise TypeError(f"{what} must be a tuple of at most {MAX_DIMS} integers")
    return value


def _checked(storage: Any, offset: Any, size: Any, stride: Any, dtype: DType | None = None) -> TensorRef:
    """torch's `set_` checks: the storage holds every element shape, strides and offset reach."""
    if not isinstance(storage, StorageRef):
        raise TypeError(f"a tensor's storage must come from the file, got {type(storage).__name__}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if type(offset) is not int or offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    if any(n < 0 for n in size) or len(size) != len(stride) or any(s < 0 for s in stride):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} and strides={list(stride)}")
    dtype = dtype or storage.dtype
    nbytes = storage.numel * storage.dtype.itemsize
    if all(size) and (offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))) * dtype.itemsize > nbytes:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset} are out "
                           f"of bounds for storage of size {nbytes}")
    return TensorRef(storage, offset, size, stride, dtype)


def _v3(storage, offset, size, stride, _requires_grad, _hooks, dtype, _metadata=None):
    if not isinstance(dtype, DType):
        raise TypeError(f"_rebuild_tensor_v3 needs a dtype, got {type(dtype).__name__}")
    return _checked(storage, offset, size, stride, dtype)


def parameter(data, _requires_grad=False, _hooks=None, _state=None):
    if not isinstance(data, TensorRef):
        raise TypeError(f"a parameter's data must be a tensor, got {type(data).__name__}")
    return data


def _other(kind: str, count: int):
    """What torch would rebuild as a quantized, sparse, meta, nested... tensor: recorded as such, refused later."""
    def rebuild(*args):
        if len(args) != count:
            raise TypeError(f"expected {count} arguments, got {len(args)}")
        if kind == "sparse":
            layout = str(args[0].value).removeprefix("torch.") if isinstance(args[0], Marker) else "unknown"
            return TensorRef(None, 0, (), (), None, f"sparse ({layout})")
        return TensorRef(None, 0, (), (), None, kind)
    return rebuild


def _from_type(func, new_type, args, state):
    if not (isinstance(func, Marker) and func.name.startswith("torch._utils._rebuild")) \
            or not (isinstance(new_type, Marker) and new_type.name in _TENSOR_TYPES) or type(args) is not tuple:
        raise TypeError("_rebuild_from_type_v2 only rebuilds plain tensors")
    return func.value(*args)


def plain_key(value: Any) -> Any:
    """A dictionary key or set member: a plain value, or a short flat tuple of them (anything deeper could crash
    Python when hashed)."""
    if type(value) in _SCALARS or type(value) is tuple and len(value) <= 16 and all(type(v) in _SCALARS for v in value):
        return value
    raise TypeError(f"a dictionary key or set member must be a plain value, not {type(value).__name__}")


def _container(kind: type):
    """OrderedDict/Counter/set called as torch calls them (with the pickle's arguments), keys checked first."""
    def make(*args):
        if len(args) > 1:
            raise TypeError(f"expected at most 1 arguments, got {len(args)}")
        source = args[0] if args else ()
        items = list(source.items()) if isinstance(source, dict) else source
        if type(items) not in (list, tuple):
            raise TypeError(f"'{type(source).__name__}' object is not iterable")
        if kind is set or kind is Counter and not isinstance(source, dict):
            return kind(plain_key(v) for v in items)
        if not all(type(p) in (list, tuple) and len(p) == 2 for p in items):
            raise ValueError(f"{kind.__name__} needs key and value pairs")
        return kind({plain_key(k): v for k, v in items} if kind is Counter else [(plain_key(k), v) for k, v in items])
    return make


def _encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("_codecs.encode is only allowed for bytes (latin-1 text)")
    return text.encode("latin-1")


def _bytearray(data=b""):
    if not isinstance(data, bytes):
        raise TypeError("bytearray expected bytes")
    return bytearray(data)


def _complex(real=0.0, imag=0.0):
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise TypeError("complex expected two numbers")
    return complex(real, imag)


def _named(kind: str):
    def make(name, index=None):
        if not isinstance(name, str) or len(name) > 64:
            raise TypeError(f"{kind} expected a short name")
        return Marker(f"{kind}({name!r})", name)
    return make


_TENSOR_TYPES = ("torch.Tensor", "torch.nn.parameter.Parameter")
_CALLABLE = {
    "collections.OrderedDict": _container(OrderedDict), "collections.Counter": _container(Counter),
    "builtins.set": _container(set), "builtins.bytearray": _bytearray, "builtins.complex": _complex,
    "_codecs.encode": _encode, "torch.Size": lambda values=(): _ints(values, "torch.Size"),
    "torch.device": _named("device"), "torch.serialization._get_layout": _named("layout"),
    "torch._utils._rebuild_tensor": lambda s, o, size, stride: _checked(s, o, size, stride),
    "torch._utils._rebuild_tensor_v2": lambda s, o, size, stride, _grad=False, _hooks=None, _meta=None:
        _checked(s, o, size, stride),
    "torch._utils._rebuild_tensor_v3": _v3,
    "torch._utils._rebuild_parameter": parameter, "torch._utils._rebuild_parameter_with_state": parameter,
    "torch._utils._rebuild_qtensor": _other("quantized", 7),
    "torch._utils._rebuild_sparse_tensor": _other("sparse", 2),
    "torch._utils._rebuild_meta_tensor_no_storage": _other("meta (it holds no data)", 4),
    "torch._utils._rebuild_nested_tensor": _other("nested", 4),
    "torch._utils._rebuild_wrapper_subclass": _other("unsupported", 8),
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": _other("unsupported", 4),
    "torch._utils._rebuild_device_tensor_from_numpy": _other("unsupported", 4),
    "torch._tensor._rebuild_from_type_v2": _from_type,
}
STORAGE_TYPES = {**{f"torch{cuda}.{n}Storage": DTYPES[d] for n, d in _STORAGES.items() for cuda in ("", ".cuda")},
                  "torch.storage.UntypedStorage": DTYPES["uint8"]}
_INERT = {*_TENSOR_TYPES, *(f"torch.{q}" for q in ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                                                   "per_channel_symmetric", "per_channel_affine_float_qparams"))}


def resolve_global(module: str, name: str) -> Any:
    """What an allowed global stands for (a Marker, or a DType); Refused, in torch's wording, for anything else."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    full = f"{module}.{name}"
    if module in BLOCKED_MODULES:
        raise Refused(f"Trying to load unsupported GLOBAL {full} whose module {module} is blocked.")
    if full in _CALLABLE or full in STORAGE_TYPES or full in _INERT:
        return Marker(full, _CALLABLE.get(full) or STORAGE_TYPES.get(full))
    if module == "torch" and name in DTYPES:
        return DTYPES[name]
    raise Refused(f"Unsupported global: GLOBAL {full.removeprefix('builtins.')} was not an allowed global by default.")


def storage_key(value: Any) -> str:
    """A persistent id's storage key: torch writes "0", "1", ...; anything with dots or slashes names no data."""
    key = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise MissingRecord(f"no tensor data named {str(key)[:40]!r} in the file")
    return key
