"""Image loading for prediction and training: any reasonable file in, 8-bit RGB out, or ImageLoadError.

- Only JPEG, PNG, BMP, GIF, TIFF and WebP are opened (Pillow's own allow-list argument).
- Decompression bombs are rejected: Pillow's error, and its warning too (made an error here).
- EXIF orientation is applied; multi-frame images use their first frame.
- Every mode becomes RGB: alpha is composited on white, 16-bit and 32-bit greys are scaled (not
  clipped), palette, CMYK, 1-bit and grey images are converted.
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError

ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

# Pillow only warns between MAX_IMAGE_PIXELS and twice that; in this app the warning is an error.
# A process-wide filter (set once) rather than catch_warnings(), which is not thread-safe.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
ImageFile.LOAD_TRUNCATED_IMAGES = False

Source = Union[str, os.PathLike, IO[bytes], bytes]  # noqa: UP007 - a runtime alias on Python 3.10


def is_image_file(path: os.PathLike | str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(paths: Iterable[os.PathLike | str], recursive: bool = True) -> list[Path]:
    """Image files among `paths`; folders are searched (recursively), hidden files skipped, sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.glob("*")
            found.extend(sorted(f for f in walker if f.is_file() and is_image_file(f)
                                and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            found.append(p)
    return found


def _scale_to_uint8(img: Image.Image) -> Image.Image:
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        top = float(finite.max()) if finite.size else 1.0
        arr = np.nan_to_num(arr * (255.0 if top <= 1.0 else 1.0), nan=0.0, posinf=255.0, neginf=0.0)
    else:
        arr = arr.astype(np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16") or 255 < top <= 65535:
            arr = arr / 257.0
        elif top > 65535:
            arr = arr * (255.0 / top)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB (alpha composited on white)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _scale_to_uint8(img).convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("PA", "LA", "La", "RGBA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")


def _describe(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<image data>"


def load_image(source: Source, *, name: str | None = None, min_side: int | None = None) -> Image.Image:
    """Open, decode and normalise an image to RGB. Raises ImageLoadError naming the file and reason.

    min_side: when given, JPEGs may be decoded at a reduced scale whose shorter side stays >= min_side
    (much faster for large photos, identical result after resizing to that size).
    """
    label = _describe(source, name)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            raise ImageLoadError(f"{label}: is a folder, not an image")
        with Image.open(source, formats=list(ALLOWED_FORMATS)) as img:
            w, h = img.size
            if w < 1 or h < 1:
                raise ImageLoadError(f"{label}: the image has no pixels ({w}x{h})")
            limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
            if w * h > limit:
                raise ImageLoadError(f"{label}: image too large ({w}x{h} pixels, limit {limit:,}); "
                                     "rejected as a possible decompression bomb")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if min_side and img.format == "JPEG" and min(w, h) > 2 * min_side:
                scale = min_side / min(w, h)
                img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
            img.load()
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
                oriented = img
            return to_rgb(oriented).copy()
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{label}: file not found") from None
    except PermissionError:
        raise ImageLoadError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: not an image in a supported format "
                             f"({', '.join(f if f != 'WEBP' else 'WebP' for f in ALLOWED_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{label}: image too large, rejected as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text or isinstance(exc, EOFError):
            text = "the image is truncated or damaged"
        raise ImageLoadError(f"{label}: cannot decode the image ({text})") from None
