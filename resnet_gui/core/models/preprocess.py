"""The preprocessing a model was trained with, stored in every checkpoint and reused at inference.

Eval preprocessing (the one prediction uses) is: resize the shorter side to `resize`, center-crop
`input_size` x `input_size`, scale to [0, 1], normalise with `mean` and `std` -- the same steps as
torchvision's `ImageClassification` preset, so a fine-tuned model sees at inference exactly what its
ImageNet weights expect.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Per-channel statistics of the CIFAR-10 training set.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {str(value)[:40]!r}")
    return int(value)


def _triple(values, name: str) -> tuple[float, float, float]:
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise ValueError(f"{name} must be 3 numbers (red, green, blue), got {str(values)[:60]!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be 3 finite numbers, got {str(values)[:60]!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class Preprocess:
    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        """Every field checked for type and range (the values may come from a file)."""
        size, resize = _whole(self.input_size, "input_size"), _whole(self.resize, "resize")
        if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
            raise ValueError(f"input size {size} is outside {MIN_INPUT_SIZE}-{MAX_INPUT_SIZE} pixels")
        if not size <= resize <= 2 * MAX_INPUT_SIZE:
            raise ValueError(f"resize {resize} must be between the input size {size} and {2 * MAX_INPUT_SIZE}")
        mean, std = _triple(self.mean, "mean"), _triple(self.std, "std")
        if not all(-10 <= m <= 10 for m in mean) or not all(1e-6 <= s <= 100 for s in std):
            raise ValueError(f"mean {mean} and std {std} are out of range (std must be positive)")
        if not isinstance(self.interpolation, str) or self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {str(self.interpolation)[:40]!r}; one of "
                             f"{', '.join(INTERPOLATIONS)}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "resize", resize)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """Raises ValueError (KeyError for a missing field) for anything that is not a sane description."""
        if not isinstance(d, dict):
            raise ValueError("the preprocessing description is not a mapping")
        return cls(input_size=d["input_size"], resize=d.get("resize", d["input_size"]), mean=d["mean"],
                   std=d["std"], interpolation=d.get("interpolation", "bilinear"))


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


def resized_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """(width, height) once the shorter side is `resize` (torchvision's rule: the longer side truncated)."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def crop_box(width: int, height: int, pre: Preprocess) -> tuple[float, float, float, float]:
    """The region of a width x height image that becomes the input: the center crop of the resized image
    (torchvision's rounding), in the original image's coordinates."""
    new_w, new_h = resized_size(width, height, pre.resize)
    left = int(round((new_w - pre.input_size) / 2.0))
    top = int(round((new_h - pre.input_size) / 2.0))
    sx, sy = width / new_w, height / new_h
    return left * sx, top * sy, (left + pre.input_size) * sx, (top + pre.input_size) * sy


def resize_and_crop(image, pre: Preprocess):
    """PIL RGB image -> PIL image input_size x input_size: torchvision's Resize(resize) + CenterCrop(input_size)
    on a PIL image (the plain ImageNet eval preset), with PIL (antialiased; it releases the GIL; no torch).

    When it shrinks the image (bilinear, bicubic), only the cropped region is computed, in one resampling pass:
    the same pixels within 1 level in 255 (the filter positions are computed from the region). Otherwise (an
    image smaller than `resize`, nearest) the whole image is resized, then cropped: exactly the preset."""
    from PIL import Image

    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST}
    size, resample = (pre.input_size, pre.input_size), filters[pre.interpolation]
    width, height = image.size
    if min(width, height) >= pre.resize and pre.interpolation != "nearest":
        return image.resize(size, resample, box=crop_box(width, height, pre))
    new_w, new_h = resized_size(width, height, pre.resize)
    left, top = int(round((new_w - pre.input_size) / 2.0)), int(round((new_h - pre.input_size) / 2.0))
    resized = image if (new_w, new_h) == (width, height) else image.resize((new_w, new_h), resample)
    return resized.crop((left, top, left + pre.input_size, top + pre.input_size))
