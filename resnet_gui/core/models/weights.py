"""A state dict from a file, checked before anything uses it; no torch import.

The checks and their messages live here once, for both readers: pth_read.py's tensor records (TensorRef, numpy
arrays) and safe_load.py's torch tensors. A state dict is a flat mapping of names to dense, real tensors whose
storage really holds what their shape and strides claim; floating-point values must be finite (names and shapes
against an architecture: archs.check_fits). Training scripts wrap state dicts
({"state_dict": ...}, {"model": ...}) and prefix their names (DataParallel's "module.", torch.compile's
"_orig_mod."): `unwrap_state_dict` finds and strips them.

A model's weights are identified by `weights_fingerprint` (sha256 of the architecture, the preprocessing and
every weight's name and float32 value: what the network computes from), and the bytes a checkpoint stores by
`stored_crc` (the CRC-32 a zip directory records for each weight's storage: read without reading the weights).
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..errors import CheckpointError

MAX_TENSORS = 20_000
MAX_TENSOR_DIMS = 8
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "model_state", "weights", "params")
PREFIXES = ("module.", "_orig_mod.", "model.", "net.")


def check_layout(path: os.PathLike | str, key: str, *, kind: str, dtype: str, shape: tuple, stride: tuple,
                 offset: int, itemsize: int, storage_bytes: int) -> None:
    """A dense, real, non-overlapping tensor whose storage holds what its shape claims. kind: "dense" or what the
    tensor is instead ("quantized", "sparse (sparse_coo)", ...); dtype: torch's name ("float32")."""
    if kind != "dense":
        raise CheckpointError(f"{path}: entry {key!r} is not a dense tensor (it is a {kind} tensor); only dense "
                              "tensors are accepted")
    if dtype not in DTYPES:
        raise CheckpointError(f"{path}: entry {key!r} has unsupported type torch.{dtype}")
    if len(shape) > MAX_TENSOR_DIMS:
        raise CheckpointError(f"{path}: entry {key!r} has {len(shape)} dimensions; weights have at most "
                              f"{MAX_TENSOR_DIMS}")
    numel = 1
    for n in shape:
        numel *= n
    if numel == 0:
        return
    if any(s < 0 for s in stride):
        raise CheckpointError(f"{path}: entry {key!r} has a negative stride")
    span = 1 + sum((n - 1) * s for n, s in zip(shape, stride))
    if span < numel:  # zero or overlapping strides: a few bytes that claim a huge tensor
        raise CheckpointError(f"{path}: entry {key!r} claims {numel:,} values but its storage holds only {span:,} "
                              "distinct ones (overlapping strides); the file is not a normal checkpoint")
    if (offset + span) * itemsize > storage_bytes:
        raise CheckpointError(f"{path}: entry {key!r} claims more data than its storage holds")


def check_entries(state: Any, path: os.PathLike | str, is_tensor: Callable[[Any], bool],
                  check_tensor: Callable[[str, Any], None]) -> dict:
    """A non-empty, flat mapping of string names to tensors, each passed to check_tensor(name, tensor)."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: holds no weights (expected a mapping of parameter names to tensors)")
    if len(state) > MAX_TENSORS:
        raise CheckpointError(f"{path}: holds {len(state):,} entries; a ResNet has a few hundred")
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: weight names must be strings, found {type(key).__name__}")
        if not is_tensor(value):
            raise CheckpointError(f"{path}: entry {key[:200]!r} is a {type(value).__name__}, not a tensor")
        check_tensor(key[:200], value)
    return state


def check_finite(state: dict, path: os.PathLike | str) -> None:
    """No NaN or infinite value in the floating-point entries (numpy arrays or torch tensors)."""
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            bad = value.dtype.kind == "f" and value.size and not np.isfinite(value).all()
        else:  # a torch tensor: its own methods, so this module needs no torch import
            bad = value.is_floating_point() and value.numel() and not bool(value.isfinite().all())
        if bad:
            raise CheckpointError(f"{path}: entry {key!r} holds NaN or infinite values; the model cannot give "
                                  "meaningful answers (retrain it, or use an earlier checkpoint)")


def unwrap_state_dict(obj: Any, path: os.PathLike | str, is_tensor: Callable[[Any], bool], depth: int = 0) -> dict:
    """Find the state dict inside a saved object and strip DataParallel/compile prefixes."""
    if isinstance(obj, dict) and obj and all(is_tensor(v) for v in obj.values()):
        return strip_prefixes(dict(obj))
    if isinstance(obj, dict) and depth < 3:
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], path, is_tensor, depth + 1)
    raise CheckpointError(f"{path}: no state dict found (expected a mapping of parameter names to tensors, "
                          f"or one under {', '.join(repr(k) for k in WRAPPER_KEYS[:4])})")


def strip_prefixes(state: dict) -> dict:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


# ---- identity ---------------------------------------------------------------------------------------------
def as_array(value: Any) -> np.ndarray:
    """A numpy array of a numpy array or a torch tensor (on any device; bfloat16 as float32), no torch import."""
    if isinstance(value, np.ndarray):
        return value
    value = value.detach().to("cpu")
    if str(value.dtype) == "torch.bfloat16":
        value = value.float()
    return value.numpy()


def stored(value: Any, half: bool) -> np.ndarray:
    """A weight as a checkpoint stores it: numpy, floating point as float16 when half."""
    value = as_array(value)
    return value.astype(np.float16) if half and value.dtype.kind == "f" else value


def float32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) if values.dtype.kind == "f" and values.dtype != np.float32 else values


def weights_fingerprint(arch: str, state: dict, preprocess: Any, *, half: bool = False) -> str:
    """sha256 of what a model computes from: its architecture, its weights as float32 values as they are read back
    (after float16 storage when half), and its preprocessing (a Preprocess). An int8 version is kept with the
    checkpoint only while this is unchanged (checkpoint.write_checkpoint), and the graph cache keys by it."""
    return fingerprint(arch, preprocess, ((key, stored(state[key], half)) for key in sorted(state)))


def fingerprint(arch: str, preprocess: Any, arrays: Iterable[tuple[str, np.ndarray]]) -> str:
    """weights_fingerprint of (name, array) pairs given in name order, one at a time (a reader can stream them)."""
    h = hashlib.sha256(json.dumps([arch, preprocess.to_dict()], sort_keys=True).encode())
    for key, arr in arrays:
        hash_array(h, key, float32(arr))
    return h.hexdigest()


def hash_array(h, key: str, arr: np.ndarray) -> None:
    h.update(key.encode() + b"\0" + str(arr.dtype).encode() + b"\0")
    h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))  # the bytes of tobytes(), without copying them


def stored_crc(crcs: Iterable[tuple[str, int]]) -> str:
    """One digest of each weight's name and the CRC-32 of its stored bytes, given in name order."""
    return hashlib.sha256("".join(f"{key}:{crc:08x};" for key, crc in crcs).encode()).hexdigest()


def crc_of(array: np.ndarray) -> int:
    """The CRC-32 of an array's bytes as pth_write stores them (contiguous, little-endian): what the zip
    directory of the written file records for its storage."""
    data = np.ascontiguousarray(array)
    return zlib.crc32(memoryview(data.astype(data.dtype.newbyteorder("<"), copy=False)).cast("B"))
