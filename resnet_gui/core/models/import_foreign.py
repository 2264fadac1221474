"""Import state dicts saved by the usual training scripts into our checkpoint format.

Handled: torchvision-layout ResNets/ResNeXts with a replaced `fc`; the classic CIFAR ResNet-18
tutorial layout (`conv1` a Sequential of conv/bn/relu, blocks with `left`/`shortcut` Sequentials,
`fc`) and the kuangliu/pytorch-cifar layout (`shortcut`, `linear`); wrappers such as
{"state_dict": ...}, {"model": ...}, {"net": ...}; DataParallel `module.` and torch.compile
`_orig_mod.` prefixes. The architecture and number of classes are inferred by matching key names and
tensor shapes against every model of the zoo. No torch import: files are read by pth_read.py, and only the
tensors the architecture needs are read, once their names and shapes fit.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .archs import ARCHS, check_fits, default_preprocess, state_dict_shapes
from .checkpoint import FORMAT, MAX_CLASSES, Checkpoint, checkpoint_from
from .preprocess import with_overrides
from .pth_read import PthFile, is_tensor, tensor_checker
from .weights import check_entries, check_finite, unwrap_state_dict

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


_TUTORIAL_BLOCK = {"left.0": "conv1", "left.1": "bn1", "left.3": "conv2", "left.4": "bn2",
                   "shortcut.0": "downsample.0", "shortcut.1": "downsample.1"}


def to_torchvision_layout(state: dict[str, Any]) -> dict[str, Any]:
    """Rename the CIFAR tutorial layouts' keys to torchvision's ResNet names; others pass through."""
    keys = list(state)
    tutorial = any(".left." in k for k in keys)
    kuangliu = any(k.startswith("linear.") for k in keys) and any(".shortcut." in k for k in keys)
    if not (tutorial or kuangliu):
        return state
    out = {}
    for key, value in state.items():
        new = key
        if tutorial and key.startswith("conv1.0."):
            new = "conv1." + key[len("conv1.0."):]
        elif tutorial and key.startswith("conv1.1."):
            new = "bn1." + key[len("conv1.1."):]
        elif key.startswith("linear."):
            new = "fc." + key[len("linear."):]
        else:
            m = re.match(r"^(layer\d+\.\d+)\.((?:left|shortcut)\.\d+)\.(.+)$", key)
            if m and m.group(2) in _TUTORIAL_BLOCK:
                new = f"{m.group(1)}.{_TUTORIAL_BLOCK[m.group(2)]}.{m.group(3)}"
        out[new] = value
    return out


def infer_arch(state: dict[str, Any], path: os.PathLike | str = "<state dict>") -> tuple[str, int]:
    """(arch, num_classes) whose parameter names and shapes match `state` (tensors or records) exactly."""
    fc = state.get("fc.weight")
    if fc is None or len(fc.shape) != 2:
        raise CheckpointError(f"{path}: not a ResNet state dict (no 'fc.weight' classifier layer found)")
    num_classes = int(fc.shape[0])
    if not 1 <= num_classes <= MAX_CLASSES:
        raise CheckpointError(f"{path}: a classifier with {num_classes:,} classes; at most {MAX_CLASSES:,} are "
                              "supported")
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for arch in ARCHS:
        expected = {k: s for k, s in state_dict_shapes(arch, num_classes).items()
                    if not k.endswith("num_batches_tracked")}
        if expected == given:
            return arch, num_classes
    conv1 = state.get("conv1.weight")
    stem = f"stem {tuple(conv1.shape)}" if conv1 is not None else "no conv1"
    raise CheckpointError(f"{path}: the weights match none of the supported architectures "
                          f"({', '.join(ARCHS)}); {len(given)} tensors, {stem}, {num_classes} classes")


def parse_class_names(value: str | Sequence[str] | None) -> list[str] | None:
    """A comma-separated list, a text file with one name per line, or a sequence of names."""
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value).expanduser()
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a list too long to be a file name (ENAMETOOLONG), or a NUL in it
            is_file = False
        if is_file:
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise CheckpointError(f"{path}: cannot read class names ({exc})") from None
            names = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            names = [part.strip() for part in value.split(",") if part.strip()]
    else:
        names = [str(n).strip() for n in value]
    if not names:
        raise CheckpointError("no class names given")
    if len(set(names)) != len(names):
        raise CheckpointError("class names must be unique")
    return names


def default_class_names(arch: str, num_classes: int) -> list[str]:
    if num_classes == 10 and ARCHS[arch].cifar_stem:
        return list(CIFAR10_CLASSES)
    return [f"class_{i}" for i in range(num_classes)]


def convert_state_dict(pth: PthFile, state: dict[str, Any], *, class_names: Sequence[str] | None = None,
                       arch: str | None = None) -> Checkpoint:
    """Our checkpoint from a foreign state dict of `pth` (tensor records): names and shapes are fitted to the
    architecture before anything is read; the values become float32 (the BatchNorm counters int64), as the
    model's own state dict holds them."""
    path = pth.path
    state = to_torchvision_layout(check_entries(state, path, is_tensor, tensor_checker(path)))
    inferred, num_classes = infer_arch(state, path)
    if arch is not None and arch != inferred:
        raise CheckpointError(f"{path}: the weights are a {inferred}, not a {arch}")
    arch = inferred
    names = list(class_names) if class_names else default_class_names(arch, num_classes)
    if len(names) != num_classes:
        raise CheckpointError(f"{path}: the model has {num_classes} classes but {len(names)} class names were given")
    expected = state_dict_shapes(arch, num_classes)
    counters = {k for k in expected if k.endswith("num_batches_tracked")}
    state = {**{k: np.zeros((), dtype=np.int64) for k in counters}, **state}  # old saves may lack BatchNorm's counter
    check_fits(state, expected, path, arch)
    weights = {}
    for key in expected:
        value = state[key] if isinstance(state[key], np.ndarray) else pth.array(state[key], key)
        weights[key] = value.astype(np.int64 if key in counters else np.float32, copy=False)
    check_finite(weights, path)
    return Checkpoint(
        arch=arch,
        class_names=names,
        preprocess=default_preprocess(arch),
        state_dict=weights,
        dataset={"description": "imported"},
        notes={"imported_from": str(path), "source_format": "foreign state dict"},
    )


def import_file(
    path: os.PathLike | str,
    *,
    class_names: str | Sequence[str] | None = None,
    arch: str | None = None,
    preprocess: dict | None = None,
) -> Checkpoint:
    """Any supported .pth (ours or foreign) as a validated Checkpoint in our format."""
    ckpt = _import(path, parse_class_names(class_names) if class_names is not None else None, arch)
    if preprocess:
        try:
            ckpt.preprocess = with_overrides(ckpt.preprocess, **preprocess)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    return ckpt


def _import(path: os.PathLike | str, names: list[str] | None, arch: str | None) -> Checkpoint:
    with PthFile(path) as pth:
        obj = pth.obj
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            ckpt = checkpoint_from(pth)  # validated whole: shapes against its architecture, finite values
            if arch is not None and arch != ckpt.arch:
                raise CheckpointError(f"{path}: the checkpoint is a {ckpt.arch}, not a {arch}")
            if names is not None:
                if len(names) != ckpt.num_classes:
                    raise CheckpointError(f"{path}: the model has {ckpt.num_classes} classes but "
                                          f"{len(names)} class names were given")
                ckpt.class_names = names
            return ckpt
        return convert_state_dict(pth, unwrap_state_dict(obj, path, is_tensor), class_names=names, arch=arch)
