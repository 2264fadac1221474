"""A dataset held in memory as uint8 images and int64 labels, and decoding a folder split into one.

decode_all needs no torch (the label check, which the classify edition runs, decodes with it); torch is imported
where tensors are made."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ImageLoadError
from ..images import load_image
from ..models.preprocess import Preprocess
from ..progress import NO_PROGRESS, Progress
from .transforms import resize_and_crop_uint8

if TYPE_CHECKING:
    import torch


@dataclass
class ArrayData:
    """A dataset held as uint8 images N x 3 x H x W and int64 labels."""
    images: torch.Tensor
    labels: torch.Tensor


def decode_all(items, transform, progress: Progress = NO_PROGRESS, what: str = "Loading images"):
    """Decode every image with 2 threads; return (transform's result or None per item, failures). Raises
    Cancelled."""
    out: list = [None] * len(items)
    failures: list[str] = []

    def one(i):
        try:
            return i, transform(load_image(items[i][0])), None
        except ImageLoadError as exc:
            return i, None, str(exc)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
        step = max(1, len(items) // 100)
        for n, (i, tensor, err) in enumerate(pool.map(one, range(len(items))), 1):
            out[i] = tensor
            if err:
                failures.append(err)
            if n % step == 0 or n == len(items):
                progress.check()
                progress.update(what, n, len(items))
    return out, failures


def folder_to_arrays(items, pre: Preprocess, progress: Progress = NO_PROGRESS, what: str = "Loading images"):
    """Decode a folder split into one uint8 tensor at pre.input_size (eval resize + center crop)."""
    import torch

    tensors, failures = decode_all(items, lambda img: resize_and_crop_uint8(img, pre), progress, what)
    keep = [i for i, t in enumerate(tensors) if t is not None]
    if not keep:
        return ArrayData(torch.empty(0, 3, pre.input_size, pre.input_size, dtype=torch.uint8),
                         torch.empty(0, dtype=torch.long)), failures
    images = torch.stack([tensors[i] for i in keep])
    labels = torch.tensor([items[i][1] for i in keep], dtype=torch.long)
    return ArrayData(images, labels), failures
