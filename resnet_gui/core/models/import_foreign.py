"""Import state dicts saved by the usual training scripts into our checkpoint format.

Handled: torchvision-layout ResNets/ResNeXts with a replaced `fc`; the classic CIFAR ResNet-18
tutorial layout (`conv1` a Sequential of conv/bn/relu, blocks with `left`/`shortcut` Sequentials,
`fc`) and the kuangliu/pytorch-cifar layout (`shortcut`, `linear`); wrappers such as
{"state_dict": ...}, {"model": ...}, {"net": ...}; DataParallel `module.` and torch.compile
`_orig_mod.` prefixes. The architecture and number of classes are inferred by matching key names and
tensor shapes against every model of the zoo.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import CheckpointError
from .archs import ARCHS
from .build import default_preprocess, new_model
from .checkpoint import FORMAT, MAX_CLASSES, Checkpoint, checkpoint_from_object
from .preprocess import with_overrides
from .safe_load import check_dense_tensors, load_weights_strict, safe_torch_load, unwrap_state_dict

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


_TUTORIAL_BLOCK = {"left.0": "conv1", "left.1": "bn1", "left.3": "conv2", "left.4": "bn2",
                   "shortcut.0": "downsample.0", "shortcut.1": "downsample.1"}


def to_torchvision_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


def _shapes(arch: str, num_classes: int) -> dict[str, tuple]:
    with torch.device("meta"):
        model = new_model(arch, num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def infer_arch(state: dict[str, torch.Tensor], path: os.PathLike | str = "<state dict>") -> tuple[str, int]:
    """(arch, num_classes) whose parameter names and shapes match `state` exactly."""
    fc = state.get("fc.weight")
    if fc is None or fc.dim() != 2:
        raise CheckpointError(f"{path}: not a ResNet state dict (no 'fc.weight' classifier layer found)")
    num_classes = int(fc.shape[0])
    if not 1 <= num_classes <= MAX_CLASSES:
        raise CheckpointError(f"{path}: a classifier with {num_classes:,} classes; at most {MAX_CLASSES:,} are "
                              "supported")
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for arch in ARCHS:
        expected = {k: s for k, s in _shapes(arch, num_classes).items() if not k.endswith("num_batches_tracked")}
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


def convert_state_dict(
    state: dict[str, torch.Tensor],
    path: os.PathLike | str,
    *,
    class_names: Sequence[str] | None = None,
    arch: str | None = None,
) -> Checkpoint:
    state = to_torchvision_layout(check_dense_tensors(state, path))
    inferred, num_classes = infer_arch(state, path)
    if arch is not None and arch != inferred:
        raise CheckpointError(f"{path}: the weights are a {inferred}, not a {arch}")
    arch = inferred
    names = list(class_names) if class_names else default_class_names(arch, num_classes)
    if len(names) != num_classes:
        raise CheckpointError(f"{path}: the model has {num_classes} classes but {len(names)} class names were given")
    model = new_model(arch, num_classes)
    own = model.state_dict()
    for key in own:  # old saves may lack BatchNorm's counter
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    load_weights_strict(model, state, path, arch)
    return Checkpoint(
        arch=arch,
        class_names=names,
        preprocess=default_preprocess(arch),
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
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
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        ckpt = checkpoint_from_object(obj, path)
        if arch is not None and arch != ckpt.arch:
            raise CheckpointError(f"{path}: the checkpoint is a {ckpt.arch}, not a {arch}")
        if names is not None:
            if len(names) != ckpt.num_classes:
                raise CheckpointError(f"{path}: the model has {ckpt.num_classes} classes but "
                                      f"{len(names)} class names were given")
            ckpt.class_names = names
        ckpt.build_model(path)  # proves the weights fit
        return ckpt
    return convert_state_dict(unwrap_state_dict(obj, path), path, class_names=names, arch=arch)
