"""Reading a .pth with torch.load, safely, and loading weights into a torch model.

Every checkpoint, imported state dict and ImageNet weights file is read without torch (pth_read.py); torch.load
stays for what only training reads and writes with torch.save: its resumable state files (core/train/state.py,
optimizer state and random generators' states).
`safe_torch_load` runs pth_read's file and zip-directory checks first, always passes `weights_only=True` (an
explicit argument, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off) and never falls back to a full
unpickle; anything that goes wrong becomes a `CheckpointError` worded by `pth_read.reason`. The tensor checks
are weights.py's, applied to torch tensors.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from .archs import check_fits
from .pth_read import PthFile, check_archive, check_file, is_tensor, reason, tensor_checker
from .weights import check_entries, check_finite, check_layout, unwrap_state_dict


def safe_torch_load(path: os.PathLike | str, *, mmap: bool = False) -> Any:
    """torch.load with weights_only=True; every failure becomes a CheckpointError naming the file."""
    path = Path(path)
    size, is_zip = check_file(path)
    if is_zip:
        check_archive(path, size)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=bool(mmap and is_zip))
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a CheckpointError
        raise CheckpointError(f"{path}: {reason(exc)}") from None


def _tensor_kind(value: torch.Tensor) -> str:
    if value.is_quantized:
        return "quantized"
    if value.is_nested:
        return "nested"
    if value.is_meta:
        return "meta (it holds no data)"
    if value.is_sparse or value.layout != torch.strided:
        return f"sparse ({str(value.layout).removeprefix('torch.')})"
    return "dense"


def check_tensor(key: str, value: torch.Tensor, path: os.PathLike | str) -> None:
    """A dense, real, non-overlapping tensor whose storage really holds what its shape claims."""
    kind = _tensor_kind(value)
    dense = kind == "dense"  # the others have no strides or storage to ask about
    check_layout(path, key, kind=kind, dtype=str(value.dtype).removeprefix("torch."),
                 shape=tuple(value.shape) if dense else (),  # a nested tensor has no single shape
                 stride=tuple(value.stride()) if dense else (), offset=value.storage_offset() if dense else 0,
                 itemsize=value.element_size(), storage_bytes=value.untyped_storage().nbytes() if dense else 0)


def check_dense_tensors(state: Any, path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """Accept only a flat mapping of names to dense, well-formed tensors."""
    return check_entries(state, path, lambda v: isinstance(v, torch.Tensor), lambda k, v: check_tensor(k, v, path))


def as_tensors(state: dict) -> dict[str, torch.Tensor]:
    """numpy arrays (what pth_read.py reads) as torch tensors sharing their memory; tensors pass through."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}


def load_weights_strict(model: nn.Module, state: dict, path: os.PathLike | str, arch: str) -> nn.Module:
    """Load `state` (torch tensors or numpy arrays) into a freshly built `model` with strict=True, as float32 where
    the model is: shapes are checked before any conversion, and NaN/infinite weights are refused."""
    state = check_dense_tensors(as_tensors(state), path)
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
    """A raw state dict from any .pth (torchvision's ImageNet weights, a wrapped one, a DataParallel one), read
    by pth_read.py, checked to be dense, as tensors."""
    with PthFile(path) as pth:
        state = check_entries(unwrap_state_dict(pth.obj, path, is_tensor), path, is_tensor, tensor_checker(path))
        return {k: torch.from_numpy(pth.array(ref, k)) for k, ref in state.items()}
