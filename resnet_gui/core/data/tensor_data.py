"""The fast path for CIFAR-sized data: the whole set as one uint8 tensor on the training device, with
batched crop/flip/normalisation there; no PIL and no DataLoader inside the loop (airbench's idea)."""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..models.preprocess import Preprocess
from .arrays import ArrayData
from .balance import epoch_order, sample_weights
from .shard import train_shard


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small tensor drawn on the CPU (crop offsets, flips, an epoch's order) onto the training device. On
    CUDA through pinned memory without blocking: a plain .to() from pageable memory synchronises the
    stream, which would make every step wait for the previous one to finish on the GPU."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _batch_channel_index(b: int, c: int, device: torch.device, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
    key = (b, c, str(device))
    if key not in cache:
        cache[key] = (torch.arange(b, device=device)[:, None, None, None],
                      torch.arange(c, device=device)[None, :, None, None])
    return cache[key]


def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True,
                     cache: dict | None = None) -> torch.Tensor:
    """Pad-`pad` random crop and (optionally) horizontal flip of a uint8 batch, in one gather on x's device.
    The offsets are drawn on the CPU from `gen` (the same crops on every device) and sent in one copy;
    `cache` keeps the batch/channel index tensors between calls (fewer small operations per step)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flips = (torch.rand(b, generator=gen) < 0.5) & flip
    rows = dy[:, None] + torch.arange(h)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip is reversed column indices
    dev = x.device
    both = to_device(torch.cat([rows, cols], 1), dev)
    batch_index, channel_index = _batch_channel_index(b, c, dev, {} if cache is None else cache)
    return padded[batch_index, channel_index, both[:, None, :h, None], both[:, None, None, h:]]


def random_resized_crop_flip(x: torch.Tensor, gen: torch.Generator, size: int, flip: bool = True,
                             scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), tries: int = 10) -> torch.Tensor:
    """torchvision's RandomResizedCrop (+ optional flip) for a whole uint8 batch at once, on x's device:
    the same parameter draw (10 tries per image, else the whole image), then one bilinear roi_align.
    Returns float values in [0, 255]."""
    from torchvision.ops import roi_align

    b, _, h, w = x.shape
    area = float(h * w)
    target = torch.empty(b, tries).uniform_(scale[0], scale[1], generator=gen) * area
    aspect = torch.empty(b, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen).exp()
    cw, ch = (target * aspect).sqrt().round(), (target / aspect).sqrt().round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.to(torch.int8).argmax(1, keepdim=True)
    cw = torch.where(ok.any(1), cw.gather(1, first).squeeze(1), torch.tensor(float(w)))
    ch = torch.where(ok.any(1), ch.gather(1, first).squeeze(1), torch.tensor(float(h)))
    top = (torch.rand(b, generator=gen) * (h - ch + 1)).floor()
    left = (torch.rand(b, generator=gen) * (w - cw + 1)).floor()
    flips = (torch.rand(b, generator=gen) < 0.5) & flip
    boxes = torch.stack([torch.arange(b, dtype=torch.float32), left, top, left + cw, top + ch], 1)
    out = roi_align(x.float(), to_device(boxes, x.device), output_size=(size, size), spatial_scale=1.0,
                    sampling_ratio=2, aligned=True)
    return torch.where(to_device(flips, x.device)[:, None, None, None], out.flip(3), out)


class Normalizer:
    def __init__(self, pre: Preprocess, device: torch.device, channels_last: bool):
        self.mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(pre.std, device=device).view(1, 3, 1, 1) * 255.0)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in [0, 255]) N x 3 x H x W -> normalised float in the model's memory format; never
        modifies its input. Two passes: convert-and-subtract into the output's layout, then scale (the same
        arithmetic as x.float().sub_(mean).mul_(inv_std), without the separate conversion and layout copy)."""
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device, memory_format=self.memory_format)
        torch.sub(x, self.mean, out=out)
        return out.mul_(self.inv_std)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch) * 7919 + 17)


def rank_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Augmentation draws of one process of several (each its own crops and flips)."""
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch) * 7919 + 17 + (int(rank) + 1) * 1_000_003)


class TensorData:
    """Whole dataset as uint8 tensors on the device; batched augmentation/normalisation on the device.

    augment: "pad_crop", "random_resized_crop" or "none" (TrainConfig.augment); hflip adds flips.
    weighted_sampler: each epoch draws its samples with replacement, classes equally often (balance.py).
    rank, world_size: one process of several trains on its shard of each epoch and validates on its
    shard of the validation set (shard.py); n_train and n_val always count the whole set."""

    kind = "tensor"

    def __init__(self, train: ArrayData, val: ArrayData, pre: Preprocess, device: torch.device, *,
                 channels_last: bool, augment: str = "pad_crop", hflip: bool = True, rank: int = 0,
                 world_size: int = 1, weighted_sampler: bool = False):
        self.train_x = train.images.to(device)
        self.train_y = train.labels.to(device)
        self.weights = sample_weights(train.labels) if weighted_sampler else None  # on the CPU, with the draws
        self.rank, self.world_size = int(rank), int(world_size)
        self._n_val = int(val.labels.numel())
        self.val_x = val.images[self.rank::self.world_size].contiguous().to(device)  # this process's shard
        self.val_y = val.labels[self.rank::self.world_size].contiguous().to(device)
        self.normalize = Normalizer(pre, device, channels_last)
        self.augment, self.hflip = augment, hflip
        self.pad = max(1, pre.input_size // 8)  # 4 px at 32 x 32
        self.skipped: list[str] = []
        self._index_cache: dict = {}

    @property
    def n_train(self) -> int:
        return int(self.train_y.numel())

    @property
    def n_val(self) -> int:
        return self._n_val

    def steps_per_epoch(self, batch_size: int) -> int:
        return (self.n_train // self.world_size) // batch_size

    def train_batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = epoch_generator(seed, epoch)
        order = epoch_order(self.n_train, gen, self.weights)
        if self.world_size > 1:  # the same order on every rank; each takes its shard and draws its own crops
            order, gen = train_shard(order, self.rank, self.world_size), rank_generator(seed, epoch, self.rank)
        order = to_device(order, self.train_x.device)
        for s in range(self.steps_per_epoch(batch_size)):
            idx = order[s * batch_size:(s + 1) * batch_size]
            x = self.train_x[idx]
            if self.augment == "pad_crop":
                x = random_crop_flip(x, gen, self.pad, self.hflip, cache=self._index_cache)
            elif self.augment == "random_resized_crop":
                x = random_resized_crop_flip(x, gen, x.shape[-1], self.hflip)
            elif self.hflip:
                flips = to_device(torch.rand(x.shape[0], generator=gen) < 0.5, x.device)
                x = torch.where(flips[:, None, None, None], x.flip(3), x)
            yield self.normalize(x), self.train_y[idx]

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for s in range(0, int(self.val_y.numel()), batch_size):
            yield self.normalize(self.val_x[s:s + batch_size]), self.val_y[s:s + batch_size]

    def seen_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share of the training images as the model sees them at inference (no augmentation)."""
        idx = torch.arange(self.rank, self.n_train, self.world_size, device=self.train_x.device)
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            yield self.normalize(self.train_x[part]), self.train_y[part]

    def close(self) -> None:
        pass
