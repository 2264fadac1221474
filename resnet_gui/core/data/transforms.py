"""The eval preprocessing (models/preprocess.py) with torchvision's tensor transforms, for training's decoding and
evaluation of in-memory images: here, not in models/, because reading and listing models needs no torch."""
from __future__ import annotations

from ..models.preprocess import Preprocess


def interpolation_mode(name: str):
    from torchvision.transforms import InterpolationMode

    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}[name]


def resize_and_crop_uint8(image, pre: Preprocess):
    """PIL RGB image -> uint8 tensor 3 x input_size x input_size (resize shorter side, center crop), with
    torchvision's tensor resize (faster than PIL's on full-size images; training decodes those)."""
    from torchvision.transforms.v2 import functional as F

    t = F.pil_to_tensor(image)
    if min(t.shape[-2:]) != pre.resize:
        t = F.resize(t, [pre.resize], interpolation=interpolation_mode(pre.interpolation), antialias=True)
    if tuple(t.shape[-2:]) != (pre.input_size, pre.input_size):
        t = F.center_crop(t, [pre.input_size, pre.input_size])
    return t
