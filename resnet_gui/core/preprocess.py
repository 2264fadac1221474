"""The preprocessing a model was trained with, stored in every checkpoint and reused at inference.

Eval preprocessing (the one prediction uses) is: resize the shorter side to `resize`, center-crop
`input_size` x `input_size`, scale to [0, 1], normalise with `mean` and `std` -- the same steps as
torchvision's `ImageClassification` preset, so a fine-tuned model sees at inference exactly what its
ImageNet weights expect.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Per-channel statistics of the CIFAR-10 training set.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocess:
    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if int(self.input_size) < 8 or int(self.resize) < int(self.input_size):
            raise ValueError(f"bad preprocessing: input_size={self.input_size}, resize={self.resize}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"bad preprocessing: mean={self.mean}, std={self.std} (3 values each, std > 0)")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"bad interpolation {self.interpolation!r}; one of {', '.join(INTERPOLATIONS)}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "input_size", int(self.input_size))
        object.__setattr__(self, "resize", int(self.resize))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(
            input_size=int(d["input_size"]),
            resize=int(d.get("resize", d["input_size"])),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=str(d.get("interpolation", "bilinear")),
        )


def with_overrides(base: Preprocess, **changes) -> Preprocess:
    """`base` with the given (non-None) fields replaced; a new input_size scales resize along."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "input_size" in changes and "resize" not in changes:
        changes["resize"] = round(changes["input_size"] * base.resize / base.input_size)
    for key in ("mean", "std"):
        if key in changes:
            changes[key] = tuple(changes[key])
    return replace(base, **changes)


def cifar_preprocess() -> Preprocess:
    return Preprocess(input_size=32, resize=32, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def interpolation_mode(name: str):
    from torchvision.transforms import InterpolationMode

    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}[name]


def resize_and_crop_uint8(image, pre: Preprocess):
    """PIL RGB image -> uint8 tensor 3 x input_size x input_size (resize shorter side, center crop)."""
    from torchvision.transforms.v2 import functional as F

    t = F.pil_to_tensor(image)
    if min(t.shape[-2:]) != pre.resize:
        t = F.resize(t, [pre.resize], interpolation=interpolation_mode(pre.interpolation), antialias=True)
    if tuple(t.shape[-2:]) != (pre.input_size, pre.input_size):
        t = F.center_crop(t, [pre.input_size, pre.input_size])
    return t
