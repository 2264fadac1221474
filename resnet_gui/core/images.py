"""Image loading for prediction and training: any reasonable file in, 8-bit RGB out, or ImageLoadError.

- Only regular files in JPEG, PNG, BMP, GIF, TIFF and WebP are opened (Pillow's own allow-list
  argument); a FIFO, a device or a folder is refused before anything is read.
- Memory is bounded before decoding: the decoded buffer of the first frame must fit
  MAX_DECODE_BYTES (600 MiB: a 12000 x 12000 RGB PNG, or any JPEG up to 8x that size, which is
  decoded at a reduced scale), and the aspect ratio must be at most MAX_ASPECT_RATIO (50:1). Large
  images are then reduced to at most MAX_WORKING_PIXELS (24 MP) before any conversion, so nothing
  later (RGB conversion, resizing, thumbnails) works on more than that.
- EXIF orientation is applied; multi-frame images use their first frame.
- Every mode becomes RGB: alpha is composited on white, 16-bit and 32-bit greys are scaled (not
  clipped), palette, CMYK, 1-bit and grey images are converted.
"""
from __future__ import annotations

import io
import math
import os
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError

ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
MAX_DECODE_BYTES = 600 * 2**20      # the full-resolution decoded buffer of one image
MAX_WORKING_PIXELS = 24_000_000     # images are reduced to at most this before conversion and resizing
MAX_ASPECT_RATIO = 50               # longer side / shorter side
MAX_FOLDER_DEPTH = 64               # nested folders searched for images
# Pillow's own bomb check (a pixel count) is replaced by the byte budget above, which is checked before
# decoding for every file; its warning stays an error in case a plugin raises it anyway. A process-wide
# filter (set once) rather than catch_warnings(), which is not thread-safe.
Image.MAX_IMAGE_PIXELS = None
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
ImageFile.LOAD_TRUNCATED_IMAGES = False

Source = Union[str, os.PathLike, IO[bytes], bytes]  # noqa: UP007 - a runtime alias on Python 3.10


def is_image_file(path: os.PathLike | str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def walk_images(folder: os.PathLike | str, *, recursive: bool = True, max_depth: int = MAX_FOLDER_DEPTH) -> list[Path]:
    """Image files (regular files with an image extension) under `folder`, sorted; hidden files and folders
    skipped. Walked iteratively; symlinked folders are not followed (no loops); raises ImageLoadError when
    folders nest deeper than max_depth."""
    root = Path(folder)
    found: list[Path] = []
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            if current == root:
                raise ImageLoadError(f"{root}: cannot be read ({exc.strerror or exc})") from None
            continue  # an unreadable sub-folder: skip it, keep the rest
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        if depth + 1 > max_depth:
                            raise ImageLoadError(f"{root}: folders nest more than {max_depth} levels deep (at "
                                                 f"{Path(entry.path).relative_to(root).parts[0]}/…); choose a "
                                                 "folder closer to the images")
                        stack.append((Path(entry.path), depth + 1))
                elif entry.is_file() and is_image_file(entry.name):
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


def list_images(paths: Iterable[os.PathLike | str], recursive: bool = True) -> list[Path]:
    """Image files among `paths`; folders are searched (see walk_images), files are kept as given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(walk_images(p, recursive=recursive))
        else:
            found.append(p)
    return found


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow holds in memory per pixel (RGB is stored in 4 bytes)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _reduced(img: Image.Image, max_pixels: int, min_side: int | None) -> Image.Image:
    """`img` reduced by the smallest integer factor that brings it to at most max_pixels, but never below
    min_side on its shorter side (box-filter reduce; nearest neighbour for palette and 1-bit images)."""
    w, h = img.size
    factor = math.ceil(math.sqrt(w * h / max_pixels)) if w * h > max_pixels else 1
    if min_side:
        factor = min(factor, max(1, min(w, h) // min_side))
    if factor <= 1:
        return img
    size = (max(1, w // factor), max(1, h // factor))
    if img.mode in ("P", "1"):
        return img.resize(size, Image.Resampling.NEAREST)
    try:
        return img.reduce(factor)
    except (ValueError, NotImplementedError):
        return img.resize(size, Image.Resampling.NEAREST)


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


def _check_regular_file(source, label: str) -> None:
    if not isinstance(source, (str, os.PathLike)):
        return
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        raise ImageLoadError(f"{label}: file not found") from None
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ImageLoadError(f"{label}: is a folder, not an image")
    if not stat.S_ISREG(mode):
        raise ImageLoadError(f"{label}: not a regular file (a pipe, socket or device); choose an image file")


def draft_scale(width: int, height: int, min_side: int | None) -> float:
    """The scale a JPEG of width x height may be decoded at: the shorter side just >= min_side (a model that
    resizes to 256 needs a 1/4 decode of a 1600x1200 photo, 1/8 of a 4032x3024 one), else what brings it to
    MAX_WORKING_PIXELS; at most 1."""
    if min_side:
        return min(1.0, min_side / min(width, height))
    return math.sqrt(min(1.0, MAX_WORKING_PIXELS / (width * height)))


def _other_image_format(source) -> str | None:
    """The format of an image PIL knows but this app does not read (PPM, ICO, …), from its header alone; None
    for anything else (text, a document, random bytes)."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        with Image.open(source) as img:
            return img.format
    except Exception:  # noqa: BLE001 - whatever it is, it is not an image PIL can name
        return None


def load_image(source: Source, *, name: str | None = None, min_side: int | None = None) -> Image.Image:
    """Open, decode and normalise an image to RGB. Raises ImageLoadError naming the file and reason.

    min_side: the shorter side the caller will resize to. JPEGs are then decoded at the smallest scale (1/2,
    1/4, 1/8, in the DCT) that keeps the shorter side >= min_side: 3-6x less work for camera photos, and
    after resizing the same picture within about 1 level in 255 on average (JPEG's own scaled decoding
    instead of a resampling filter). Other formats are decoded whole and only reduced for MAX_WORKING_PIXELS.
    """
    label = _describe(source, name)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        _check_regular_file(source, label)
        with Image.open(source, formats=list(ALLOWED_FORMATS)) as img:
            w, h = img.size
            if w < 1 or h < 1:
                raise ImageLoadError(f"{label}: the image has no pixels ({w}x{h})")
            if max(w, h) > MAX_ASPECT_RATIO * min(w, h):
                raise ImageLoadError(f"{label}: extreme aspect ratio ({w}x{h} pixels, more than "
                                     f"{MAX_ASPECT_RATIO}:1); crop it to the part to classify")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if img.format == "JPEG":
                # decode at 1/2, 1/4 or 1/8 scale (in the DCT, far less work) when that still leaves the shorter
                # side >= min_side; without min_side, only as far as MAX_WORKING_PIXELS asks
                scale = draft_scale(w, h, min_side)
                if scale <= 0.5:
                    img.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
            dw, dh = img.size
            need = dw * dh * _bytes_per_pixel(img.mode)
            if need > MAX_DECODE_BYTES:
                raise ImageLoadError(f"{label}: image too large to open safely ({w}x{h} pixels, "
                                     f"{need / 2**20:,.0f} MiB decoded; the limit is "
                                     f"{MAX_DECODE_BYTES / 2**20:,.0f} MiB). Save a smaller copy and open that")
            img.load()
            small = _reduced(img, MAX_WORKING_PIXELS, min_side)
            try:
                oriented = ImageOps.exif_transpose(small)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
                oriented = small
            out = to_rgb(oriented)
            return out.copy() if out is img else out
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(f"{label}: file not found") from None
    except PermissionError:
        raise ImageLoadError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        formats = ", ".join(f if f != "WEBP" else "WebP" for f in ALLOWED_FORMATS)
        other = _other_image_format(source)
        if other:
            raise ImageLoadError(f"{label}: an image in a format this app does not read ({other}); save it as "
                                 f"one of {formats}") from None
        raise ImageLoadError(f"{label}: not an image (its contents are not a picture, whatever its name says)") \
            from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(f"{label}: image too large to open safely (rejected as a possible decompression "
                             f"bomb; the limit is {MAX_DECODE_BYTES / 2**20:,.0f} MiB decoded)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text or isinstance(exc, EOFError):
            text = "the image is truncated or damaged"
        raise ImageLoadError(f"{label}: cannot decode the image ({text})") from None
