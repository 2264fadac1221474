"""How well a model's familiarity check works, measured when it is fitted: the share of its validation images it
flags (false positives) against the share of images it should flag (true positives): noise, flat colours, heavy
colour shifts of its own validation images, and photos bundled with the app (resources/outliers/: public-domain
and CC0 pictures from scikit-image's data set, see the README there). No torch.

The result is stored with the familiarity data ("measured") and read as one word: the model can flag unfamiliar
images *well* (at least 90 % of them caught, at most 10 % of its validation images flagged), *weakly* (at least
half caught) or *not at all*.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from resnet_gui import resources

from ..models.preprocess import Preprocess, resize_and_crop

KINDS = ("noise", "flat colours", "colour shifts", "photos")
PER_KIND = 24
PHOTO_FOLDER = "outliers"
WELL, WEAKLY, NOT_AT_ALL = "well", "weakly", "not at all"
WELL_CAUGHT, WELL_FALSE, WEAKLY_CAUGHT = 0.90, 0.10, 0.50


def rating(measured: Any) -> str:
    """"well", "weakly" or "not at all" from a stored measurement (anything else: "not at all")."""
    if not isinstance(measured, dict):
        return NOT_AT_ALL
    caught, false = measured.get("caught"), measured.get("validation_flagged")
    if not isinstance(caught, (int, float)) or not isinstance(false, (int, float)):
        return NOT_AT_ALL
    if caught >= WELL_CAUGHT and false <= WELL_FALSE:
        return WELL
    return WEAKLY if caught >= WEAKLY_CAUGHT else NOT_AT_ALL


def _photos(pre: Preprocess) -> list[np.ndarray]:
    """The bundled photos as the model receives them: each whole and its four corners (60 % of each side)."""
    folder = resources.path(PHOTO_FOLDER)
    out = []
    for path in sorted(folder.glob("*.jpg")) if folder.is_dir() else []:
        with Image.open(path) as img:
            img = img.convert("RGB")
        w, h = img.size
        cw, ch = int(w * 0.6), int(h * 0.6)
        for crop in [img] + [img.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]:
            out.append(np.asarray(resize_and_crop(crop, pre), dtype=np.uint8))
    return out


def outlier_images(val_pixels: np.ndarray, pre: Preprocess, *, per_kind: int = PER_KIND,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """{kind: uint8 N x S x S x 3}: images a model should call unfamiliar, at the model's input size."""
    rng = np.random.default_rng(seed)
    s = pre.input_size
    half = per_kind // 2
    # noise: pixel noise, and smooth colour blotches (random 4x4 colours enlarged)
    pixel_noise = rng.integers(0, 256, (half, s, s, 3), dtype=np.uint8)
    blotches = np.stack([np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(
        (s, s), Image.Resampling.BILINEAR)) for _ in range(per_kind - half)])
    # flat colours, and gentle two-colour gradients
    colours = rng.integers(0, 256, (per_kind, 2, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, s, dtype=np.float32)[None, :, None, None]
    flat = np.repeat(colours[:half, 0][:, None, None, :], s, 1).repeat(s, 2)
    grad = colours[half:, 0][:, None, None] * (1 - ramp) + colours[half:, 1][:, None, None] * ramp
    flats = np.concatenate([flat, np.broadcast_to(grad, (per_kind - half, s, s, 3))]).astype(np.uint8)
    out = {"noise": np.concatenate([pixel_noise, blotches]), "flat colours": flats}
    val = np.asarray(val_pixels, dtype=np.uint8)
    if len(val):
        picked = val[rng.choice(len(val), per_kind, replace=len(val) < per_kind)].astype(np.float32)
        tints = np.array([[1.0, 0.55, 0.2], [0.2, 0.55, 1.0], [0.3, 1.0, 0.3], [1.0, 0.2, 0.9]], np.float32)
        shifted = picked * tints[np.arange(per_kind) % len(tints)][:, None, None, :]
        rolled = np.roll(picked, 1, axis=-1)          # channels rotated: a colour image's hues change
        shifted[1::3] = (rolled[1::3] * tints[0] + 40).clip(0, 255)
        out["colour shifts"] = shifted.clip(0, 255).astype(np.uint8)
    photos = _photos(pre)
    if photos:
        out["photos"] = np.stack(photos)
    return out


def measure(flags: Callable[[np.ndarray], np.ndarray], val_pixels: np.ndarray, pre: Preprocess, *,
            val_flagged: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
    """Run the decision `flags(uint8 batch) -> N booleans` on the validation images (unless their flags are
    given) and on every kind of outlier; the shares, how many images each, and the rating word."""
    val = np.asarray(val_pixels, dtype=np.uint8)
    vf = np.asarray(val_flagged if val_flagged is not None else _in_batches(flags, val), dtype=bool)
    shares, counts = {}, {}
    for kind, images in outlier_images(val, pre, seed=seed).items():
        f = _in_batches(flags, images)
        shares[kind], counts[kind] = round(float(f.mean()), 4), int(len(f))
    measured = {"validation_flagged": round(float(vf.mean()), 4) if len(vf) else None,
                "validation_images": int(len(vf)), "outliers": shares, "outlier_images": counts,
                "caught": round(float(np.mean(list(shares.values()))), 4) if shares else None}
    measured["rating"] = rating(measured)
    return measured


def _in_batches(flags: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch: int = 32) -> np.ndarray:
    if not len(images):
        return np.zeros(0, bool)
    return np.concatenate([np.asarray(flags(images[i:i + batch]), dtype=bool) for i in range(0, len(images), batch)])


def can_flag(summary: Any) -> str:
    """What a person reads about a model's familiarity check, from its metadata summary (or a Familiarity's
    record): "can flag unfamiliar images: well / weakly / not at all", "… not measured" for data fitted before
    the app measured it, or "cannot flag unfamiliar images" without familiarity data."""
    if not isinstance(summary, dict):
        return "cannot flag unfamiliar images"
    measured = summary.get("measured")
    if not isinstance(measured, dict):
        return "can flag unfamiliar images: not measured"
    return f"can flag unfamiliar images: {rating(measured)}"


def measured_words(measured: Any) -> str:
    """The figures behind the rating: "caught 90 % of 122 test images unlike its training images (noise 100 %,
    …); flagged 5.6 % of its 36 validation images"; "" when there are none."""
    if not isinstance(measured, dict) or not isinstance(measured.get("outliers"), dict):
        return ""
    shares, counts = measured["outliers"], measured.get("outlier_images") or {}
    kinds = [f"{kind} {share:.0%}" for kind, share in shares.items() if isinstance(share, (int, float))]
    total = sum(n for n in counts.values() if isinstance(n, int))
    text = (f"caught {measured['caught']:.0%} of {total:,} test images unlike its training images "
            f"({', '.join(kinds)})") if isinstance(measured.get("caught"), (int, float)) else ""
    false, n = measured.get("validation_flagged"), measured.get("validation_images")
    if isinstance(false, (int, float)) and isinstance(n, int):
        text += f"; flagged {false:.1%} of its {n:,} validation images"
    return text
