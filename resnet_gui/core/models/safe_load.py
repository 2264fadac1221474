"""Reading any .pth safely: the leaf every other module (checkpoint, foreign, models, train state) uses.

`safe_torch_load` always passes `weights_only=True` (an explicit argument, so
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off) and never falls back to a full unpickle. Anything
that goes wrong becomes a `CheckpointError` naming the file and the reason. Then: only dense tensors are
accepted, state dicts are found inside common wrappers and stripped of DataParallel/compile prefixes,
and weights load with strict=True into a freshly built model.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .archs import check_fits

# Limits checked before torch.load allocates anything (see README "Reliability"): the pickle that holds the
# structure is small for any real checkpoint, and torch stores tensor data uncompressed, so a member that
# inflates far beyond the archive's own size is a compression bomb.
MAX_PICKLE_BYTES = 64 * 2**20
INFLATION_SLACK_BYTES = 64 * 2**20
MAX_TENSORS = 20_000
MAX_TENSOR_DIMS = 8

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "model_state", "weights", "params")
PREFIXES = ("module.", "_orig_mod.", "model.", "net.")


def _reason_from_exception(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        m = re.search(r"(Unsupported global: GLOBAL [^\s]+|Unsupported operand \d+|Trying to call [^\n]+|"
                      r"Can only [^\n]+|Unsupported class [^\n]+)", text)
        detail = f" ({m.group(1).rstrip('.')})" if m else ""
        return ("refused to load: it contains Python objects or code that a weights-only load does not "
                f"allow{detail}. Only plain tensors and values are accepted")
    if "failed finding central directory" in text or "PytorchStreamReader failed" in text \
            or isinstance(exc, (EOFError, zipfile.BadZipFile)):
        return "the file is truncated or damaged (not a complete PyTorch archive)"
    if isinstance(exc, (pickle.UnpicklingError, IndexError, KeyError)) or "invalid load key" in text:
        return "not a PyTorch checkpoint (not a zip archive nor a legacy torch file)"
    if isinstance(exc, MemoryError):
        return "the file is too large to load into memory"
    if isinstance(exc, RuntimeError) and ("size" in text and "storage" in text or "out of bounds" in text):
        return "the file is damaged: a tensor claims more data than the file holds"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"could not be read ({type(exc).__name__}: {first[:300]})"


def safe_torch_load(path: os.PathLike | str, *, mmap: bool = False) -> Any:
    """torch.load with weights_only=True; every failure becomes a CheckpointError naming the file."""
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
    if is_zip:
        _check_archive(path, size)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=bool(mmap and is_zip))
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a CheckpointError
        raise CheckpointError(f"{path}: {_reason_from_exception(exc)}") from None


def _check_archive(path: Path, size: int) -> None:
    """Refuse zip archives whose members would inflate far beyond the file (checked from the central
    directory, before anything is decompressed), and archives that are not PyTorch checkpoints."""
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


def _tensor_kind(value: torch.Tensor) -> str:
    if value.is_quantized:
        return "quantized"
    if value.is_nested:
        return "nested"
    if value.is_meta:
        return "meta (it holds no data)"
    if value.is_sparse or value.layout != torch.strided:
        return f"sparse ({str(value.layout).removeprefix('torch.')})"
    return "unsupported"


def check_tensor(key: str, value: torch.Tensor, path: os.PathLike | str) -> None:
    """A dense, real, non-overlapping tensor whose storage really holds what its shape claims."""
    if value.layout != torch.strided or value.is_sparse or value.is_quantized or value.is_meta or value.is_nested:
        raise CheckpointError(f"{path}: entry {key!r} is not a dense tensor (it is a {_tensor_kind(value)} "
                              "tensor); only dense tensors are accepted")
    if value.is_complex() or value.dtype not in _DTYPES:
        raise CheckpointError(f"{path}: entry {key!r} has unsupported type {value.dtype}")
    if value.dim() > MAX_TENSOR_DIMS:
        raise CheckpointError(f"{path}: entry {key!r} has {value.dim()} dimensions; weights have at most "
                              f"{MAX_TENSOR_DIMS}")
    if value.numel() == 0:
        return
    if any(stride < 0 for stride in value.stride()):
        raise CheckpointError(f"{path}: entry {key!r} has a negative stride")
    span = 1 + sum((n - 1) * stride for n, stride in zip(value.shape, value.stride()))
    if span < value.numel():  # zero or overlapping strides: a few bytes that claim a huge tensor
        raise CheckpointError(f"{path}: entry {key!r} claims {value.numel():,} values but its storage holds "
                              f"only {span:,} distinct ones (overlapping strides); the file is not a normal "
                              "checkpoint")
    needed = (value.storage_offset() + span) * value.element_size()
    if needed > value.untyped_storage().nbytes():
        raise CheckpointError(f"{path}: entry {key!r} claims more data than its storage holds")


_DTYPES = {torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
           torch.int8, torch.uint8, torch.bool}


def check_dense_tensors(state: dict, path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """Accept only a flat mapping of names to dense, well-formed tensors."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: holds no weights (expected a mapping of parameter names to tensors)")
    if len(state) > MAX_TENSORS:
        raise CheckpointError(f"{path}: holds {len(state):,} entries; a ResNet has a few hundred")
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: weight names must be strings, found {type(key).__name__}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key[:200]!r} is a {type(value).__name__}, not a tensor")
        check_tensor(key[:200], value, path)
    return state


def check_finite(state: dict, path: os.PathLike | str) -> None:
    for key, value in state.items():
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: entry {key!r} holds NaN or infinite values; the model cannot give "
                                  "meaningful answers (retrain it, or use an earlier checkpoint)")


def load_weights_strict(model: nn.Module, state: dict, path: os.PathLike | str, arch: str) -> nn.Module:
    """Load `state` into a freshly built `model` with strict=True, as float32 where the model is: shapes are
    checked before any conversion, and NaN/infinite weights are refused."""
    check_dense_tensors(state, path)
    own = model.state_dict()
    check_fits(state, {k: tuple(v.shape) for k, v in own.items()}, path, arch)
    check_finite(state, path)
    converted = {}
    for key, value in state.items():
        target = own.get(key)
        if target is not None and value.dtype != target.dtype and value.is_floating_point():
            value = value.to(target.dtype)
        converted[key] = value
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:4]) if len(lines) > 1 else lines[0] if lines else "mismatch"
        raise CheckpointError(f"{path}: the weights do not fit architecture {arch} ({detail[:400]})") from None
    return model


def load_state_dict_file(path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """A raw state dict from any .pth (ours, a wrapped one, a DataParallel one), checked to be dense."""
    return check_dense_tensors(unwrap_state_dict(safe_torch_load(path), path), path)


def unwrap_state_dict(obj: Any, path: os.PathLike | str, depth: int = 0) -> dict[str, torch.Tensor]:
    """Find the state dict inside a saved object and strip DataParallel/compile prefixes."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefixes(dict(obj))
    if isinstance(obj, dict) and depth < 3:
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], path, depth + 1)
    raise CheckpointError(f"{path}: no state dict found (expected a mapping of parameter names to tensors, "
                          f"or one under {', '.join(repr(k) for k in WRAPPER_KEYS[:4])})")


def _strip_prefixes(state: dict) -> dict:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state
