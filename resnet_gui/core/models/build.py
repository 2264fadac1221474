"""The model zoo as torch networks: torchvision's ResNet family (built by `resnet.py`, the same networks without the
cost of importing torchvision), plus `resnet18_cifar` for 32x32 inputs; a checkpoint's network with its weights.

`resnet18_cifar` is ResNet-18 with the 7x7 stride-2 stem replaced by a 3x3 stride-1 convolution and no
max-pool -- the topology of the classic CIFAR ResNet-18 tutorials. torchvision itself is imported only for
the ImageNet weights' address.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from ..download import download
from ..errors import CheckpointError, DownloadError, ModelError, Remedy
from ..progress import NO_PROGRESS, Progress
from .archs import arch_info
from .checkpoint import Checkpoint, read_checkpoint
from .resnet import resnet
from .safe_load import load_state_dict_file, load_weights_strict


def _imagenet_weights(arch: str):
    info = arch_info(arch)
    if not info.has_imagenet_weights:
        raise ModelError(
            f"{arch} has no ImageNet weights (its 3x3 stem differs from ImageNet models); "
            "train it from scratch, or fine-tune resnet18 instead"
        )
    import torchvision.models  # only here: its import costs seconds (see resnet.py)

    return torchvision.models.get_model_weights(info.builder).DEFAULT


def weights_cache_dir() -> Path:
    """The folder of torchvision's weights cache ($TORCH_HOME/hub/checkpoints); needs no torchvision import."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_path(arch: str) -> Path:
    """Where torchvision's cache (under TORCH_HOME) keeps the ImageNet weights of `arch`."""
    return weights_cache_dir() / os.path.basename(_imagenet_weights(arch).url)


def new_model(arch: str, num_classes: int) -> nn.Module:
    info = arch_info(arch)
    model = resnet(info.builder, num_classes)
    if info.cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        if not model.conv1.weight.is_meta:  # built on meta by tests of archs.state_dict_shapes
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def fetch_imagenet_weights(
    arch: str,
    *,
    allow_download: bool = True,
    progress: Progress = NO_PROGRESS,
) -> Path:
    """Return the cached weights file of `arch`, downloading it (hash-checked) when allowed."""
    weights = _imagenet_weights(arch)
    path = imagenet_weights_path(arch)
    if path.is_file():
        return path
    # where the file comes from and goes: the command line says it, the window offers Download and Locate instead
    remedy = Remedy("weights_file", f"{weights.url} as {path}")
    if not allow_download:
        raise ModelError(f"the ImageNet weights of {arch} are not on this computer yet", remedy=remedy)
    match = re.search(r"-([a-f0-9]{8,})\.pth$", path.name)
    try:
        download(weights.url, path, sha256_prefix=match.group(1) if match else None,
                 progress=progress, what="Downloading ImageNet weights")
    except DownloadError as exc:
        raise ModelError(f"the ImageNet weights of {arch} could not be downloaded: {exc.reason or exc}",
                         remedy=remedy) from None
    return path


def build_model(
    arch: str,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    *,
    allow_download: bool = True,
    progress: Progress = NO_PROGRESS,
) -> nn.Module:
    """Build `arch` with a `num_classes`-way head.

    weights: None (random init), "imagenet" (torchvision's DEFAULT ImageNet weights from the torch hub
    cache, downloaded when missing and allowed), or the path of a local weights file (a state dict of
    the ImageNet model, for offline labs). With ImageNet weights the backbone is pretrained and the
    final `fc` layer is replaced by a freshly initialised one when num_classes != 1000.
    """
    if int(num_classes) < 1:
        raise ModelError(f"num_classes must be at least 1, got {num_classes}")
    if weights is None:
        return new_model(arch, int(num_classes))
    if isinstance(weights, str) and weights.lower() in {"imagenet", "default", "pretrained"}:
        path = fetch_imagenet_weights(arch, allow_download=allow_download, progress=progress)
    else:
        path = Path(weights)
        _imagenet_weights(arch)  # raise the clear error for resnet18_cifar
    state = load_state_dict_file(path)
    fc_out = state.get("fc.weight")
    base = new_model(arch, int(fc_out.shape[0]) if fc_out is not None else 1000)
    load_weights_strict(base, state, path, arch)
    if base.fc.out_features != num_classes:
        base.fc = nn.Linear(base.fc.in_features, int(num_classes))
    return base



def model_from_checkpoint(ckpt: Checkpoint, path: os.PathLike | str = "<checkpoint>") -> nn.Module:
    """A freshly built model with the checkpoint's weights (numpy arrays or tensors) loaded strictly, in eval
    mode, float32."""
    if ckpt.state_dict is None:
        raise CheckpointError(f"{path}: metadata only, no weights were loaded")
    try:
        model = build_model(ckpt.arch, ckpt.num_classes)
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    load_weights_strict(model, ckpt.state_dict, path, ckpt.arch)
    return model.eval()


def load_model(path: os.PathLike | str) -> tuple[Checkpoint, nn.Module]:
    ckpt = read_checkpoint(path)
    return ckpt, model_from_checkpoint(ckpt, path)
