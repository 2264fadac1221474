"""Why the model answered: the class activation map at the last residual stage (Zhou et al., 2016).

Every network here ends in global average pooling and one linear layer, so the Grad-CAM of a class at the last
stage (Selvaraju et al., 2017: activations weighted by the spatially averaged gradient of the class's logit) is
exactly the class activation map: that gradient is the class's `fc` weights divided by the map's area. No
backward pass is needed: the map is the ReLU of the last stage's feature maps weighted by the `fc` row of the
class, normalised to [0, 1], at that stage's resolution (7 x 7 for 224-pixel inputs, 4 x 4 at 32). numpy only.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def class_activation_map(feature_maps: np.ndarray, fc_weight: np.ndarray, class_index: int) -> np.ndarray:
    """(h x w map in [0, 1]) for one image's last-stage feature maps (D x h x w) and the fc weights (C x D)."""
    maps = np.asarray(feature_maps, dtype=np.float32)
    weight = np.asarray(fc_weight, dtype=np.float32)
    if maps.ndim != 3 or weight.ndim != 2 or weight.shape[1] != maps.shape[0]:
        raise ValueError(f"feature maps {maps.shape} do not fit fc weights {weight.shape}")
    if not 0 <= class_index < weight.shape[0]:
        raise ValueError(f"class {class_index} does not exist (the model has {weight.shape[0]})")
    cam = np.maximum(np.tensordot(weight[class_index], maps, axes=1), 0.0)
    top = float(cam.max())
    return cam / top if top > 0 else cam


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The map resized (bilinear, pixel centres aligned) to `size` (H, W) for an overlay, still in [0, 1]."""
    h, w = int(size[0]), int(size[1])
    image = Image.fromarray(np.asarray(cam, dtype=np.float32), mode="F")
    return np.clip(np.asarray(image.resize((max(1, w), max(1, h)), Image.Resampling.BILINEAR)), 0.0, 1.0)
