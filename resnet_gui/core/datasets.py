"""Datasets for training: CIFAR-10 and folders of class folders (ImageFolder layout).

Two data paths feed the engine (resnet_gui.core.train):

* TensorData -- the fast path for CIFAR-sized data (input <= 64 px): the whole set is one uint8
  tensor on the training device; random crop (pad 4) and flip run batched on that device; no PIL and
  no DataLoader inside the loop.
* LoaderData -- folder datasets at ImageNet sizes: a DataLoader (spawn workers, 0 when frozen) with
  deterministic per-sample augmentation (random-resized crop + flip), images decoded once and kept in
  memory when they fit in `cache_mb`.

Both produce normalised float batches on the device and are deterministic given (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted run would.
"""
from __future__ import annotations

import math
import os
import sys
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .download import DownloadCancelled, DownloadError, download
from .errors import DatasetError, ImageLoadError
from .images import IMAGE_EXTENSIONS, load_image
from .paths import datasets_dir
from .preprocess import Preprocess, interpolation_mode, resize_and_crop_uint8

ProgressFn = Callable[[str, int, int], None]  # (what, done, total)
CancelFn = Callable[[], bool]

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TARBALL = "cifar-10-python.tar.gz"
VAL_NAMES = ("val", "valid", "validation")
IMBALANCE_RATIO = 5.0


class Cancelled(Exception):
    """The user asked to stop while data was being prepared."""


def _check(cancelled: CancelFn | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled()


# =============================================================================================
# CIFAR-10
# =============================================================================================
def default_cifar_root() -> Path:
    return datasets_dir() / "cifar10"


def find_cifar(location: Path) -> tuple[Path | None, Path | None]:
    """(folder holding cifar-10-batches-py, tarball) found at `location`."""
    if location.is_file() and location.name.endswith((".tar.gz", ".tgz")):
        if (location.parent / CIFAR_FOLDER).is_dir():  # extracted before
            return location.parent, None
        return None, location
    if location.name == CIFAR_FOLDER and location.is_dir():
        return location.parent, None
    if (location / CIFAR_FOLDER).is_dir():
        return location, None
    if (location / CIFAR_TARBALL).is_file():
        return None, location / CIFAR_TARBALL
    return None, None


def _safe_extract(tarball: Path, dest: Path) -> None:
    """Extract the CIFAR tarball after checking its MD5 (only the official archive is accepted)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    if not check_integrity(str(tarball), CIFAR10.tgz_md5):
        raise DatasetError(f"{tarball}: not the official CIFAR-10 archive (MD5 mismatch); download it again")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{tarball}: cannot extract ({exc})") from None


def cifar_missing_message(root: Path) -> str:
    return (f"CIFAR-10 was not found in {root}. Either let the app download it (the Download button, or "
            f"--download on the command line), or put {CIFAR_TARBALL} (from "
            f"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) or the extracted {CIFAR_FOLDER} folder "
            f"there, or point the dataset location at a folder that holds either.")


def locate_cifar10(
    data: os.PathLike | str | None = None,
    *,
    download_if_missing: bool = False,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
) -> Path:
    """The folder that holds cifar-10-batches-py: local copy first, then a tarball, then a download."""
    root = Path(data).expanduser() if data else default_cifar_root()
    base, tarball = find_cifar(root)
    if base is not None:
        return base
    if tarball is not None:  # extract next to the archive when we may write there, else into the data folder
        if (default_cifar_root() / CIFAR_FOLDER).is_dir():
            return default_cifar_root()  # extracted there before
        folder = tarball.parent
        target = folder if data is not None and os.access(folder, os.W_OK) else default_cifar_root()
        if progress:
            progress("Extracting CIFAR-10", 0, 1)
        _safe_extract(tarball, target)
        return target
    if not download_if_missing:
        raise DatasetError(cifar_missing_message(root))
    from torchvision.datasets import CIFAR10

    dest = default_cifar_root() / CIFAR_TARBALL
    try:
        download(CIFAR10.url, dest, md5=CIFAR10.tgz_md5, timeout=30,
                 progress=(lambda d, t: progress("Downloading CIFAR-10", d, t)) if progress else None,
                 cancelled=cancelled)
    except DownloadCancelled:
        raise Cancelled() from None
    except DownloadError as exc:
        raise DatasetError(f"{exc}. {cifar_missing_message(default_cifar_root())}") from None
    _safe_extract(dest, default_cifar_root())
    return default_cifar_root()


@dataclass
class ArrayData:
    """A dataset held as uint8 images N x 3 x H x W and int64 labels."""
    images: torch.Tensor
    labels: torch.Tensor


def load_cifar10(base: Path) -> tuple[ArrayData, ArrayData, list[str]]:
    """Train and test splits from a folder holding cifar-10-batches-py (torchvision checks the MD5s)."""
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(base), train=True, download=False)
        test = CIFAR10(str(base), train=False, download=False)
    except RuntimeError as exc:
        raise DatasetError(f"CIFAR-10 in {base / CIFAR_FOLDER} is incomplete or corrupted ({exc}); delete that "
                           "folder and download or extract it again") from None
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise DatasetError(f"CIFAR-10 in {base / CIFAR_FOLDER} cannot be read ({exc})") from None

    def to_tensor(ds) -> ArrayData:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ArrayData(images, torch.tensor(ds.targets, dtype=torch.long))

    return to_tensor(train), to_tensor(test), list(train.classes)


# =============================================================================================
# Folder datasets
# =============================================================================================
@dataclass
class FolderSplit:
    class_names: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    test: list[tuple[Path, int]] = field(default_factory=list)
    layout: str = "split"  # "split" (train/ and val/ sub-folders) or "single" (split by val_split)
    warnings: list[str] = field(default_factory=list)

    def counts(self, items: Sequence[tuple[Path, int]]) -> dict[str, int]:
        c = Counter(label for _, label in items)
        return {name: c.get(i, 0) for i, name in enumerate(self.class_names)}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def _scan_classes(folder: Path, class_names: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    dirs = _class_dirs(folder)
    names = class_names or [d.name for d in dirs]
    index = {n: i for i, n in enumerate(names)}
    items: list[tuple[Path, int]] = []
    for d in dirs:
        if d.name not in index:
            raise DatasetError(f"{d}: class folder {d.name!r} is not among the training classes ({', '.join(names)})")
        files = _images_in(d)
        if not files and class_names is None:
            raise DatasetError(f"class folder {d} has no images; add images or remove the folder")
        items.extend((f, index[d.name]) for f in files)
    return names, items


def stratified_split(items: list[tuple[Path, int]], val_split: float, seed: int):
    """Per class, a seeded shuffle; round(n * val_split) images (at least 1 when n >= 2) go to val."""
    by_class: dict[int, list[tuple[Path, int]]] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label]
        g = torch.Generator().manual_seed(int(seed) * 1000 + label)
        order = torch.randperm(len(group), generator=g).tolist()
        n_val = min(len(group) - 1, max(1 if len(group) >= 2 else 0, round(len(group) * val_split)))
        val.extend(group[i] for i in order[:n_val])
        train.extend(group[i] for i in order[n_val:])
    return sorted(train), sorted(val)


def scan_folder(root: os.PathLike | str, *, val_split: float = 0.2, seed: int = 0) -> FolderSplit:
    """Read the layout: root/{train,val[,test]}/<class>/..., or root/<class>/... split by val_split."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; a dataset is a folder with one sub-folder per class")
    val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        names, train = _scan_classes(root / "train")
        _, val = _scan_classes(val_dir, names)
        test = _scan_classes(root / "test", names)[1] if (root / "test").is_dir() else []
        split = FolderSplit(names, train, val, test, layout="split")
    else:
        if not _class_dirs(root):
            raise DatasetError(f"{root} has no class folders; put the images of each class in its own sub-folder "
                               f"(for example {root / 'cats'} and {root / 'dogs'})")
        names, items = _scan_classes(root)
        train, val = stratified_split(items, val_split, seed)
        split = FolderSplit(names, train, val, layout="single")
    if len(split.class_names) < 2:
        raise DatasetError(f"{root} has {len(split.class_names)} class folder(s); a classifier needs at least 2")
    counts = split.counts(split.train)
    empty = [n for n, c in counts.items() if c == 0]
    if empty:
        raise DatasetError(f"class(es) {', '.join(empty)} have no training images in {root}")
    if not split.val:
        raise DatasetError(f"{root} leaves no images for validation; add images or use a larger validation split")
    hi, lo = max(counts.items(), key=lambda kv: kv[1]), min(counts.items(), key=lambda kv: kv[1])
    if hi[1] >= IMBALANCE_RATIO * lo[1]:
        split.warnings.append(f"strong class imbalance: {hi[0]!r} has {hi[1]} training images, {lo[0]!r} only "
                              f"{lo[1]}; accuracy will favour the larger classes (add images or rebalance)")
    missing_val = [n for n, c in split.counts(split.val).items() if c == 0]
    if missing_val:
        split.warnings.append(f"no validation images for: {', '.join(missing_val)}")
    return split


def _decode_all(items, transform, progress, cancelled, what):
    """Decode every image with 2 threads; return (tensors or None per item, failures)."""
    out: list[torch.Tensor | None] = [None] * len(items)
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
                _check(cancelled)
                if progress:
                    progress(what, n, len(items))
    return out, failures


def folder_to_arrays(items, pre: Preprocess, progress=None, cancelled=None, what="Loading images"):
    """Decode a folder split into one uint8 tensor at pre.input_size (eval resize + center crop)."""
    tensors, failures = _decode_all(items, lambda img: resize_and_crop_uint8(img, pre), progress, cancelled, what)
    keep = [i for i, t in enumerate(tensors) if t is not None]
    if not keep:
        return ArrayData(torch.empty(0, 3, pre.input_size, pre.input_size, dtype=torch.uint8),
                         torch.empty(0, dtype=torch.long)), failures
    images = torch.stack([tensors[i] for i in keep])
    labels = torch.tensor([items[i][1] for i in keep], dtype=torch.long)
    return ArrayData(images, labels), failures


# =============================================================================================
# Batched device-side augmentation (fast path)
# =============================================================================================
def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Pad-`pad` random crop and (optionally) horizontal flip of a uint8 batch, in one gather on x's device."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flips = (torch.rand(b, generator=gen) < 0.5) & flip
    rows = dy[:, None] + torch.arange(h)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip is reversed column indices
    dev = x.device
    return padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows.to(dev)[:, None, :, None], cols.to(dev)[:, None, None, :]]


class _Normalizer:
    def __init__(self, pre: Preprocess, device: torch.device, channels_last: bool):
        self.mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(pre.std, device=device).view(1, 3, 1, 1) * 255.0)
        self.channels_last = channels_last

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = x_uint8.float().sub_(self.mean).mul_(self.inv_std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch) * 7919 + 17)


class TensorData:
    """Whole dataset as uint8 tensors on the device; batched crop/flip/normalise on the device."""

    kind = "tensor"

    def __init__(self, train: ArrayData, val: ArrayData, pre: Preprocess, device: torch.device, *,
                 channels_last: bool, augment: bool = True, hflip: bool = True):
        self.train_x = train.images.to(device)
        self.train_y = train.labels.to(device)
        self.val_x = val.images.to(device)
        self.val_y = val.labels.to(device)
        self.normalize = _Normalizer(pre, device, channels_last)
        self.augment, self.hflip = augment, hflip
        self.pad = max(1, pre.input_size // 8)  # 4 px at 32 x 32
        self.skipped: list[str] = []

    @property
    def n_train(self) -> int:
        return int(self.train_y.numel())

    @property
    def n_val(self) -> int:
        return int(self.val_y.numel())

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n_train // batch_size

    def train_batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = _epoch_generator(seed, epoch)
        order = torch.randperm(self.n_train, generator=gen).to(self.train_x.device)
        for s in range(self.steps_per_epoch(batch_size)):
            idx = order[s * batch_size:(s + 1) * batch_size]
            x = self.train_x[idx]
            if self.augment:
                x = random_crop_flip(x, gen, self.pad, self.hflip)
            yield self.normalize(x), self.train_y[idx]

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for s in range(0, self.n_val, batch_size):
            yield self.normalize(self.val_x[s:s + batch_size]), self.val_y[s:s + batch_size]

    def close(self) -> None:
        pass


# =============================================================================================
# DataLoader path (folder datasets at ImageNet sizes)
# =============================================================================================
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
                 hflip: bool = True):
        self.items = list(items)
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
        if self.train:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7_919_993 + index)
            i, j, h, w = _random_resized_crop_params(img.shape[-2], img.shape[-1], gen)
            out = TF.resized_crop(img, i, j, h, w, [size, size], interpolation=interp, antialias=True)
            if torch.rand(1, generator=gen).item() < 0.5 and self.hflip:
                out = TF.horizontal_flip(out)
        else:
            out = img
            if min(out.shape[-2:]) != self.pre.resize:
                out = TF.resize(out, [self.pre.resize], interpolation=interp, antialias=True)
            out = TF.center_crop(out, [size, size])
        return out, label


def collate_skip_bad(batch):
    """Stack good samples; return (images uint8, labels, [messages for images that failed])."""
    good = [(img, label) for img, label in batch if img is not None]
    bad = [label for img, label in batch if img is None]
    if not good:
        return None, None, bad
    return torch.stack([g[0] for g in good]), torch.tensor([g[1] for g in good], dtype=torch.long), bad


class EpochSampler(torch.utils.data.Sampler):
    """Yields (index, epoch) in an order seeded by (seed, epoch); call set_epoch() before each epoch."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, int(seed), shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=_epoch_generator(self.seed, self.epoch)).tolist()
        else:
            order = range(self.n)
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
                 workers: int | None, cache_mb: int, channels_last: bool, hflip: bool = True, progress=None,
                 cancelled=None):
        self.normalize = _Normalizer(pre, device, channels_last)
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

            train_cache, bad_t = _decode_all(train_items, shrink, progress, cancelled, "Loading training images")
            val_cache, bad_v = _decode_all(val_items, shrink, progress, cancelled, "Loading validation images")
            self.skipped = bad_t + bad_v
            keep_t = [i for i, t in enumerate(train_cache) if t is not None]
            keep_v = [i for i, t in enumerate(val_cache) if t is not None]
            train_items, train_cache = [train_items[i] for i in keep_t], [train_cache[i] for i in keep_t]
            val_items, val_cache = [val_items[i] for i in keep_v], [val_cache[i] for i in keep_v]
        self.cached = cached
        self.workers = auto_workers(workers, cached)
        self.train_set = FolderDataset(train_items, pre, train=True, seed=seed, cache=train_cache, hflip=hflip)
        self.val_set = FolderDataset(val_items, pre, train=False, seed=seed, cache=val_cache)
        self.train_sampler = EpochSampler(len(train_items), seed, shuffle=True)
        self.batch_size = batch_size
        kw = {"num_workers": self.workers, "collate_fn": collate_skip_bad, "pin_memory": device.type == "cuda"}
        if self.workers > 0:
            kw.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4)
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=torch.utils.data.BatchSampler(self.train_sampler, batch_size, drop_last=True),
            **kw)
        self.val_loader = torch.utils.data.DataLoader(
            self.val_set, batch_sampler=torch.utils.data.BatchSampler(
                EpochSampler(len(val_items), seed, shuffle=False), batch_size, drop_last=False), **kw)

    @property
    def n_train(self) -> int:
        return len(self.train_set)

    @property
    def n_val(self) -> int:
        return len(self.val_set)

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n_train // batch_size

    def _batches(self, loader):
        for x, y, bad in loader:
            self.skipped.extend(b for b in bad if b not in self.skipped)
            if x is None or (len(y) < 2 and loader is self.train_loader):
                continue  # BatchNorm needs at least 2 samples in training
            yield self.normalize(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def train_batches(self, epoch: int, batch_size: int, seed: int):
        self.train_sampler.set_epoch(epoch)
        return self._batches(self.train_loader)

    def val_batches(self, batch_size: int):
        return self._batches(self.val_loader)

    def close(self) -> None:
        for loader in (self.train_loader, self.val_loader):
            it = getattr(loader, "_iterator", None)
            if it is not None and hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()
            loader._iterator = None
