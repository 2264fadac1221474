"""Why the model answered: the heat map for one class (core/inference/cam.py; the same as Grad-CAM for these
networks), laid over the image, made in a worker.

The map covers the region the model actually saw (the centre crop of the resized image); the rest of the
image is dimmed. Colours run from blue (no evidence) through green and yellow to red (strongest evidence),
and stronger evidence is drawn more opaque so that the picture stays readable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QImage

from ..common.qimages import rgb_array_to_qimage

PREVIEW_PX = 1600
MIN_OVERLAY_PX = 384        # smaller images are enlarged (crisp pixels) so that the smooth map can be seen
# a perceptually ordered "turbo"-like ramp: (position, (r, g, b))
RAMP = ((0.0, (48, 18, 59)), (0.25, (62, 155, 254)), (0.5, (70, 248, 132)), (0.75, (251, 185, 56)),
        (1.0, (200, 20, 10)))
MIN_ALPHA, MAX_ALPHA = 0.15, 0.65
OUTSIDE_DIM = 0.45


@dataclass(frozen=True)
class CamResult:
    name: str                  # the image (as the single-image view names it)
    class_index: int
    label: str
    overlay: QImage            # the preview image with the map laid over the region the model saw
    peak: tuple[float, float]  # where the map is strongest, as fractions of the preview's width and height
    cropped: bool = False      # the model saw only the centre of the image (the rest is dimmed)


def colorize(cam: np.ndarray) -> np.ndarray:
    """H x W values in [0, 1] -> H x W x 3 float colours of RAMP."""
    xs = [p for p, _ in RAMP]
    return np.stack([np.interp(cam, xs, [c[i] for _, c in RAMP]) for i in range(3)], axis=-1)


def overlay(image_rgb: np.ndarray, cam: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The image (H x W x 3 uint8) with `cam` (already resized to the box) blended into the box
    (left, top, right, bottom in pixels), and the area outside the box dimmed."""
    out = image_rgb.astype(np.float32) * OUTSIDE_DIM
    left, top, right, bottom = (int(round(v)) for v in box)
    region = image_rgb[top:bottom, left:right].astype(np.float32)
    alpha = (MIN_ALPHA + (MAX_ALPHA - MIN_ALPHA) * cam)[..., None]
    out[top:bottom, left:right] = region * (1 - alpha) + colorize(cam) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def explain_task(report, stop, model_path: str, source, name: str, device: str, class_index: int | None) -> CamResult:
    from resnet_gui.core.images import load_image
    from resnet_gui.core.inference.cam import upsample
    from resnet_gui.core.models.preprocess import crop_box

    from .model_cache import get_predictor, using

    predictor = get_predictor(model_path, device)
    image = load_image(source, name=name)
    with using(predictor):
        cam, index = predictor.explain(image, class_index)  # layer4's map in [0, 1], and the class explained
    preview = image.copy()
    preview.thumbnail((PREVIEW_PX, PREVIEW_PX))
    if max(preview.size) < MIN_OVERLAY_PX:
        factor = -(-MIN_OVERLAY_PX // max(preview.size))
        preview = preview.resize((preview.width * factor, preview.height * factor), resample=0)  # nearest
    sx, sy = preview.width / image.width, preview.height / image.height
    left, top, right, bottom = crop_box(image.width, image.height, predictor.preprocess)
    box = (left * sx, top * sy, right * sx, bottom * sy)
    w, h = int(round(box[2])) - int(round(box[0])), int(round(box[3])) - int(round(box[1]))
    big = upsample(cam, (max(1, h), max(1, w)))
    pixels = overlay(np.asarray(preview.convert("RGB")), big, box)
    py, px = np.unravel_index(int(big.argmax()), big.shape)
    peak = ((box[0] + px + 0.5) / preview.width, (box[1] + py + 0.5) / preview.height)
    cropped = box[0] >= 1 or box[1] >= 1 or box[2] <= preview.width - 1 or box[3] <= preview.height - 1
    return CamResult(name=name, class_index=int(index), label=predictor.class_names[int(index)],
                     overlay=rgb_array_to_qimage(pixels), peak=peak, cropped=cropped)
