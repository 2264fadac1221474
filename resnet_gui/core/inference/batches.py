"""Decoding many files for a model: worker threads decode, resize and centre-crop each file as the model's
preprocessing says, ahead of the model, in input order, one bad file never stopping the others. No torch."""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import ImageLoadError
from ..images import load_image
from ..models.preprocess import Preprocess, resize_and_crop

DECODE_WORKERS = 2  # threads; PIL releases the GIL while it decodes and resamples


@dataclass
class DecodedBatch:
    """Consecutive files of a decode_batches() run, ready for a model."""
    paths: list[str]                    # every file of the batch, in input order
    pixels: np.ndarray                  # uint8, one row per decoded file: len(decoded) x S x S x 3 (RGB)
    decoded: list[int]                  # position in `paths` of each row of `pixels`
    errors: dict[int, str] = field(default_factory=dict)  # position in `paths` -> why it could not be used
    thumbnails: dict[int, Image.Image] = field(default_factory=dict)  # position -> thumbnail, when asked for


def decode_for_model(path: str, pre: Preprocess, thumbnail: int | None = None):
    """One file -> (uint8 S x S x 3 array: resized and center-cropped as `pre` says, thumbnail or None).
    Raises ImageLoadError. JPEGs are decoded at the smallest scale that still covers pre.resize."""
    image = load_image(path, name=path, min_side=pre.resize)
    pixels = np.asarray(resize_and_crop(image, pre))
    if thumbnail:
        image.thumbnail((thumbnail, thumbnail))  # in place: the full image is not needed any more
        return pixels, image
    return pixels, None


def decode_batches(
    paths: Iterable[os.PathLike | str],
    pre: Preprocess,
    *,
    batch_size: int = 32,
    thumbnail: int | None = None,
    cancelled: Callable[[], bool] | None = None,
    workers: int = DECODE_WORKERS,
    ahead: int | None = None,
) -> Iterator[DecodedBatch]:
    """Decode files for a model in `workers` threads, in input order, batch_size files per batch (the last one
    smaller). The threads keep working `ahead` files (default: 2 batches) beyond the batch just yielded, so
    decoding overlaps whatever the caller does with it. A file that cannot be used is an entry in `errors`,
    and the others go on. Stops before the next file once cancelled() is true; closing the iterator
    drops the files not yet started. Needs no torch; memory: about `ahead` decoded crops, plus one image
    being decoded per thread."""
    paths = [str(p) for p in paths]
    batch_size = max(1, int(batch_size))
    ahead = max(int(ahead or 2 * batch_size), batch_size, 1)
    pending: deque[Future] = deque()
    submitted = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="image-decode") as pool:
        try:
            for start in range(0, len(paths), batch_size):
                chunk = paths[start:start + batch_size]
                rows, decoded, errors, thumbs = [], [], {}, {}
                for i in range(len(chunk)):
                    while submitted < len(paths) and len(pending) < ahead:
                        pending.append(pool.submit(decode_for_model, paths[submitted], pre, thumbnail))
                        submitted += 1
                    if cancelled is not None and cancelled():
                        return
                    try:
                        pixels, thumb = pending.popleft().result()
                    except ImageLoadError as exc:
                        errors[i] = str(exc)
                        continue
                    rows.append(pixels)
                    decoded.append(i)
                    if thumb is not None:
                        thumbs[i] = thumb
                size = pre.input_size
                stacked = np.stack(rows) if rows else np.empty((0, size, size, 3), np.uint8)
                yield DecodedBatch(chunk, stacked, decoded, errors, thumbs)
        finally:
            for future in pending:
                future.cancel()
