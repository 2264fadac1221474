"""The architectures the app offers, their topology, state-dict shapes and default preprocessing, as data (no torch
import: the GUI lists them before torch has loaded; the torch-free reader and the ONNX graph builder use them)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import CheckpointError, ModelError
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, cifar_preprocess


@dataclass(frozen=True)
class ArchInfo:
    name: str
    builder: str  # torchvision.models function name
    summary: str
    cifar_stem: bool = False
    resize: int = 256  # the shorter side before the 224 crop in its ImageNet weights' preset (torchvision's DEFAULT)

    @property
    def has_imagenet_weights(self) -> bool:
        return not self.cifar_stem

    @property
    def input_size(self) -> int:
        """The default input size: 32 for the CIFAR stem, else the crop of its ImageNet weights' preset (224 for
        every model here; tests/test_models.py checks it against torchvision's), known without importing
        torchvision (seconds) or torch."""
        return 32 if self.cifar_stem else 224


ARCHS: dict[str, ArchInfo] = {
    a.name: a
    for a in [
        ArchInfo("resnet18_cifar", "resnet18", "ResNet-18 for 32x32 images (3x3 stem, no max-pool)", cifar_stem=True),
        ArchInfo("resnet18", "resnet18", "ResNet-18, 11.7M parameters"),
        ArchInfo("resnet34", "resnet34", "ResNet-34, 21.8M parameters"),
        ArchInfo("resnet50", "resnet50", "ResNet-50, 25.6M parameters", resize=232),
        ArchInfo("resnet101", "resnet101", "ResNet-101, 44.5M parameters", resize=232),
        ArchInfo("resnet152", "resnet152", "ResNet-152, 60.2M parameters", resize=232),
        ArchInfo("resnext50_32x4d", "resnext50_32x4d", "ResNeXt-50 32x4d, 25.0M parameters", resize=232),
        ArchInfo("resnext101_32x8d", "resnext101_32x8d", "ResNeXt-101 32x8d, 88.8M parameters", resize=232),
        ArchInfo("wide_resnet50_2", "wide_resnet50_2", "Wide ResNet-50-2, 68.9M parameters", resize=232),
    ]
}


def arch_info(arch: str) -> ArchInfo:
    try:
        return ARCHS[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r}; supported: {', '.join(ARCHS)}") from None



def default_preprocess(arch: str) -> Preprocess:
    """The eval preprocessing for `arch`: CIFAR statistics at 32x32, else its ImageNet weights' own preset
    (tests/core/models/test_models.py compares it with torchvision's `weights.transforms()`)."""
    info = arch_info(arch)
    if info.cifar_stem:
        return cifar_preprocess()
    return Preprocess(input_size=info.input_size, resize=info.resize, mean=IMAGENET_MEAN, std=IMAGENET_STD)


# ---------------------------------------------------------------------------------------------
# the topology, as data: what resnet.py builds with torch and inference/onnx_graph.py without it
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Topology:
    """torchvision's ResNet(block, layers, groups, width_per_group) for one builder."""
    bottleneck: bool                  # Bottleneck (V1.5: stride on the 3x3) or BasicBlock
    layers: tuple[int, int, int, int]  # blocks per stage (layer1..layer4)
    groups: int = 1
    width_per_group: int = 64

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1


TOPOLOGIES: dict[str, Topology] = {
    "resnet18": Topology(False, (2, 2, 2, 2)),
    "resnet34": Topology(False, (3, 4, 6, 3)),
    "resnet50": Topology(True, (3, 4, 6, 3)),
    "resnet101": Topology(True, (3, 4, 23, 3)),
    "resnet152": Topology(True, (3, 8, 36, 3)),
    "resnext50_32x4d": Topology(True, (3, 4, 6, 3), 32, 4),
    "resnext101_32x8d": Topology(True, (3, 4, 23, 3), 32, 8),
    "wide_resnet50_2": Topology(True, (3, 4, 6, 3), 1, 128),
}


@dataclass(frozen=True)
class Block:
    """One residual block: `name` is its state-dict prefix (layer2.0), convs its (suffix, in, out, kernel,
    stride, groups) in order; downsample: the 1x1 projection of the shortcut, when the shape changes."""
    name: str
    convs: tuple[tuple[str, int, int, int, int, int], ...]
    downsample: tuple[int, int, int] | None  # (in, out, stride)


def blocks(arch: str) -> list[Block]:
    """The residual blocks of `arch` in order, as torchvision's ResNet._make_layer builds them."""
    top = TOPOLOGIES[arch_info(arch).builder]
    inplanes, out = 64, []
    for stage, count in enumerate(top.layers):
        planes = 64 * 2**stage
        for index in range(count):
            stride = 2 if stage and not index else 1
            cout = planes * top.expansion
            if top.bottleneck:
                width = int(planes * (top.width_per_group / 64.0)) * top.groups
                convs = (("conv1", inplanes, width, 1, 1, 1), ("conv2", width, width, 3, stride, top.groups),
                         ("conv3", width, cout, 1, 1, 1))
            else:
                convs = (("conv1", inplanes, planes, 3, stride, 1), ("conv2", planes, planes, 3, 1, 1))
            shortcut = (inplanes, cout, stride) if stride != 1 or inplanes != cout else None
            out.append(Block(f"layer{stage + 1}.{index}", convs, shortcut))
            inplanes = cout
    return out


def feature_dim_of(arch: str) -> int:
    """Width of the penultimate features (the input of fc): 512 for the basic-block networks, else 2048."""
    return 512 * TOPOLOGIES[arch_info(arch).builder].expansion


def state_dict_shapes(arch: str, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of `arch`'s state dict with a `num_classes`-way head, in torch's order (num_batches_tracked
    included, shape ()), computed from the topology: no torch, no model built."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(conv: str, bn: str, cin: int, cout: int, kernel: int, groups: int = 1) -> None:
        shapes[f"{conv}.weight"] = (cout, cin // groups, kernel, kernel)
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{field}"] = (cout,)
        shapes[f"{bn}.num_batches_tracked"] = ()

    conv_bn("conv1", "bn1", 3, 64, 3 if arch_info(arch).cifar_stem else 7)
    for block in blocks(arch):
        for i, (suffix, cin, cout, kernel, _, groups) in enumerate(block.convs, 1):
            conv_bn(f"{block.name}.{suffix}", f"{block.name}.bn{i}", cin, cout, kernel, groups)
        if block.downsample:
            cin, cout, _ = block.downsample
            conv_bn(f"{block.name}.downsample.0", f"{block.name}.downsample.1", cin, cout, 1)
    shapes["fc.weight"] = (int(num_classes), feature_dim_of(arch))
    shapes["fc.bias"] = (int(num_classes),)
    return shapes


def check_fits(state: dict, expected: dict[str, tuple], path: os.PathLike | str, arch: str) -> None:
    """Names and shapes of `state` (torch tensors or numpy arrays) against what `arch` needs (`expected`: name ->
    shape), before any data is converted or copied."""
    """Names and shapes of `state` against what `arch` needs (`expected`: name -> shape), before any data is
    converted or copied."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: {tuple(state[k].shape)} instead of {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(k[:80] for k in unexpected[:3])}{' …' if len(unexpected) > 3 else ''}")
        if wrong:
            parts.append(f"wrong shape {'; '.join(wrong[:3])}{' …' if len(wrong) > 3 else ''}")
        raise CheckpointError(f"{path}: the weights do not fit architecture {arch} ({'; '.join(parts)[:400]})")
