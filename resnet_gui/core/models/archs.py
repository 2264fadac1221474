"""The architectures the app offers (no torch import: the GUI lists them before torch has loaded)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError


@dataclass(frozen=True)
class ArchInfo:
    name: str
    builder: str  # torchvision.models function name
    summary: str
    cifar_stem: bool = False

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
        ArchInfo("resnet50", "resnet50", "ResNet-50, 25.6M parameters"),
        ArchInfo("resnet101", "resnet101", "ResNet-101, 44.5M parameters"),
        ArchInfo("resnet152", "resnet152", "ResNet-152, 60.2M parameters"),
        ArchInfo("resnext50_32x4d", "resnext50_32x4d", "ResNeXt-50 32x4d, 25.0M parameters"),
        ArchInfo("resnext101_32x8d", "resnext101_32x8d", "ResNeXt-101 32x8d, 88.8M parameters"),
        ArchInfo("wide_resnet50_2", "wide_resnet50_2", "Wide ResNet-50-2, 68.9M parameters"),
    ]
}


def arch_info(arch: str) -> ArchInfo:
    try:
        return ARCHS[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r}; supported: {', '.join(ARCHS)}") from None


