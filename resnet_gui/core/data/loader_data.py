"""The DataLoader path for folder datasets at ImageNet sizes: spawn workers (0 when frozen), seeded
per-sample augmentation, images decoded once and kept in memory when they fit."""
from __future__ import annotations

import math
import os
import sys

import torch

from ..errors import ImageLoadError
from ..images import load_image
from ..models.preprocess import Preprocess
from ..progress import NO_PROGRESS, Progress
from .arrays import decode_all
from .balance import epoch_order, sample_weights
from .folders import FolderSplit
from .shard import train_shard
from .tensor_data import Normalizer, epoch_generator
from .transforms import interpolation_mode


def _random_resized_crop_params(h: int, w: int, gen: torch.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params, drawing from `gen` instead of the global RNG."""
    area = h * w
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0].item(), log_ratio[1].item(), generator=gen).item())
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            i = int(torch.randint(0, h - ch + 1, (1,), generator=gen).item())
            j = int(torch.randint(0, w - cw + 1, (1,), generator=gen).item())
            return i, j, ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class FolderDataset(torch.utils.data.Dataset):
    """Items are (path, label); indices are (index, epoch) pairs so augmentation is seeded per sample.

    `cache` optionally holds decoded uint8 tensors (shorter side = pre.resize) for every item.
    Returns None for an image that fails to load; the collate function drops it and reports the path.
    """

    def __init__(self, items, pre: Preprocess, *, train: bool, seed: int, cache: list | None = None,
                 augment: str = "random_resized_crop", hflip: bool = True):
        self.items = list(items)
        self.augment = augment
        self.hflip = hflip
        self.pre = pre
        self.train = train
        self.seed = int(seed)
        self.cache = cache

    def __len__(self) -> int:
        return len(self.items)

    def _decoded(self, index: int) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[index]
        from torchvision.transforms.v2 import functional as TF

        image = load_image(self.items[index][0], min_side=self.pre.resize)
        return TF.pil_to_tensor(image)

    def __getitem__(self, key):
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        path, label = self.items[index]
        try:
            img = self._decoded(index)
        except ImageLoadError as exc:
            return None, str(exc)
        if img is None:
            return None, f"{path}: could not be decoded"
        from torchvision.transforms.v2 import functional as TF

        size = self.pre.input_size
        interp = interpolation_mode(self.pre.interpolation)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7_919_993 + index)
        if self.train and self.augment == "random_resized_crop":
            i, j, h, w = _random_resized_crop_params(img.shape[-2], img.shape[-1], gen)
            out = TF.resized_crop(img, i, j, h, w, [size, size], interpolation=interp, antialias=True)
        else:  # the eval view: shorter side to pre.resize, center crop
            out = img
            if min(out.shape[-2:]) != self.pre.resize:
                out = TF.resize(out, [self.pre.resize], interpolation=interp, antialias=True)
            out = TF.center_crop(out, [size, size])
            if self.train and self.augment == "pad_crop":
                pad = max(1, size // 8)
                dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
                out = TF.pad(out, [pad])[..., dy:dy + size, dx:dx + size]
        if self.train and self.hflip and torch.rand(1, generator=gen).item() < 0.5:
            out = TF.horizontal_flip(out)
        return out, label


def collate_skip_bad(batch):
    """Stack good samples; return (images uint8, labels, [messages for images that failed])."""
    good = [(img, label) for img, label in batch if img is not None]
    bad = [label for img, label in batch if img is None]
    if not good:
        return None, None, bad
    return torch.stack([g[0] for g in good]), torch.tensor([g[1] for g in good], dtype=torch.long), bad


class EpochSampler(torch.utils.data.Sampler):
    """Yields (index, epoch) in an order seeded by (seed, epoch); call set_epoch() before each epoch.

    With world_size > 1 it yields only this rank's shard (shard.py): shuffled, the epoch order is the
    same on every rank and split into equal parts (DistributedSampler with drop_last); in fixed order
    (validation) rank r takes r, r + W, ... with no padding, so every sample is counted exactly once."""

    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1,
                 weights: torch.Tensor | None = None):
        self.n, self.seed, self.shuffle, self.epoch = n, int(seed), shuffle, 0
        self.rank, self.world_size = int(rank), int(world_size)
        self.weights = weights  # shuffled: draws with replacement by these weights (the weighted sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.world_size <= 1:
            return self.n
        return self.n // self.world_size if self.shuffle else len(range(self.rank, self.n, self.world_size))

    def __iter__(self):
        if self.shuffle:
            order = epoch_order(self.n, epoch_generator(self.seed, self.epoch), self.weights)
            order = train_shard(order, self.rank, self.world_size).tolist()
        else:
            order = range(self.rank, self.n, self.world_size)
        return ((i, self.epoch) for i in order)


def auto_workers(requested: int | None, cached: bool) -> int:
    """DataLoader workers: as asked; else 0 when frozen or cached in memory, else cores - 1 (max 8)."""
    if requested is not None:
        return int(requested)
    if getattr(sys, "frozen", False) or cached:
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class LoaderData:
    kind = "loader"

    def __init__(self, split: FolderSplit, pre: Preprocess, device: torch.device, *, seed: int, batch_size: int,
                 workers: int | None, cache_mb: int, channels_last: bool, augment: str = "random_resized_crop",
                 hflip: bool = True, rank: int = 0, world_size: int = 1, progress: Progress = NO_PROGRESS,
                 weighted_sampler: bool = False):
        self.normalize = Normalizer(pre, device, channels_last)
        self.device = device
        self.skipped: list[str] = []
        est_bytes = (len(split.train) + len(split.val)) * 3 * pre.resize * pre.resize * 4 // 3
        cached = est_bytes <= cache_mb * 2**20
        train_cache = val_cache = None
        train_items, val_items = split.train, split.val
        if cached:
            from torchvision.transforms.v2 import functional as TF

            def shrink(img):
                t = TF.pil_to_tensor(img)
                if min(t.shape[-2:]) > pre.resize:
                    t = TF.resize(t, [pre.resize], interpolation=interpolation_mode(pre.interpolation), antialias=True)
                return t

            train_cache, bad_t = decode_all(train_items, shrink, progress, "Loading training images")
            val_cache, bad_v = decode_all(val_items, shrink, progress, "Loading validation images")
            self.skipped = bad_t + bad_v
            keep_t = [i for i, t in enumerate(train_cache) if t is not None]
            keep_v = [i for i, t in enumerate(val_cache) if t is not None]
            train_items, train_cache = [train_items[i] for i in keep_t], [train_cache[i] for i in keep_t]
            val_items, val_cache = [val_items[i] for i in keep_v], [val_cache[i] for i in keep_v]
        self.cached = cached
        self.workers = auto_workers(workers, cached)
        self.train_set = FolderDataset(train_items, pre, train=True, seed=seed, cache=train_cache, augment=augment,
                                       hflip=hflip)
        self.val_set = FolderDataset(val_items, pre, train=False, seed=seed, cache=val_cache)
        self.seen_set = FolderDataset(train_items, pre, train=False, seed=seed, cache=train_cache)
        self._rank, self._world_size = rank, world_size
        weights = sample_weights(torch.tensor([label for _, label in train_items])) if weighted_sampler else None
        self.train_sampler = EpochSampler(len(train_items), seed, shuffle=True, rank=rank, world_size=world_size,
                                          weights=weights)
        self.batch_size = batch_size
        kw = {"num_workers": self.workers, "collate_fn": collate_skip_bad, "pin_memory": device.type == "cuda"}
        if self.workers > 0:
            kw.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4)
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=torch.utils.data.BatchSampler(self.train_sampler, batch_size, drop_last=True),
            **kw)
        self.val_loader = torch.utils.data.DataLoader(
            self.val_set, batch_sampler=torch.utils.data.BatchSampler(
                EpochSampler(len(val_items), seed, shuffle=False, rank=rank, world_size=world_size), batch_size,
                drop_last=False), **kw)

    @property
    def n_train(self) -> int:
        return len(self.train_set)

    @property
    def n_val(self) -> int:
        return len(self.val_set)

    def steps_per_epoch(self, batch_size: int) -> int:
        return len(self.train_sampler) // batch_size

    def _batches(self, loader, train: bool):
        for x, y, bad in loader:
            self.skipped.extend(b for b in bad if b not in self.skipped)
            if x is None or (train and len(y) < 2):
                if train:  # BatchNorm needs 2 samples; the step still counts, so epochs keep their length
                    yield None
                continue
            yield self.normalize(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def train_batches(self, epoch: int, batch_size: int, seed: int):
        """Exactly steps_per_epoch items: a batch, or None when its images failed to load."""
        self.train_sampler.set_epoch(epoch)
        return self._batches(self.train_loader, train=True)

    def val_batches(self, batch_size: int):
        return self._batches(self.val_loader, train=False)

    def seen_batches(self, batch_size: int):
        """This process's share of the training images as the model sees them at inference (the eval view, no
        augmentation), decoded in this process: used once, at the end of a run."""
        loader = torch.utils.data.DataLoader(
            self.seen_set, batch_sampler=torch.utils.data.BatchSampler(
                EpochSampler(len(self.seen_set), 0, shuffle=False, rank=self._rank, world_size=self._world_size),
                batch_size, drop_last=False), num_workers=0, collate_fn=collate_skip_bad)
        return self._batches(loader, train=False)

    def close(self) -> None:
        for loader in (self.train_loader, self.val_loader):
            it = getattr(loader, "_iterator", None)
            if it is not None and hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()
            loader._iterator = None
