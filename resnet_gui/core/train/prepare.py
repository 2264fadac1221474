"""Data for a run: find/scan the dataset, decode it onto the device or set up a loader, describe it.

Everything that can be wrong with the data is found here, before any training step: a missing
dataset, one class, a class whose images are all unreadable, fewer images than a batch.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import TrainData
from ..data.arrays import folder_to_arrays
from ..data.cifar import load_cifar10, locate_cifar10
from ..data.folders import scan_folder
from ..data.loader_data import LoaderData
from ..data.tensor_data import TensorData
from ..errors import DatasetError
from ..models.archs import default_preprocess
from ..models.preprocess import Preprocess, cifar_preprocess, with_overrides
from ..progress import Progress
from .config import TrainConfig
from .events import DatasetSummary, Status, TrainEvent
from .events import Warning as WarningEvent

TENSOR_PATH_MAX_SIZE = 64  # inputs up to this size are decoded once into one tensor on the device


@dataclass
class PreparedData:
    data: TrainData
    class_names: list[str]
    description: dict
    preprocess: Preprocess


def eval_preprocess(cfg: TrainConfig) -> Preprocess:
    if cfg.dataset == "cifar10":
        return cifar_preprocess()
    pre = default_preprocess(cfg.arch)
    return with_overrides(pre, input_size=cfg.image_size) if cfg.image_size else pre


def skipped_warning(skipped: list[str]) -> WarningEvent:
    shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return WarningEvent(message=f"Skipped {len(skipped)} image{'s' if len(skipped) != 1 else ''} that could not be "
                           f"loaded: {shown}", paths=tuple(skipped))


def _usable_counts(data: TrainData, class_names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    if isinstance(data, TensorData):
        train = torch.bincount(data.train_y.cpu(), minlength=len(class_names)).tolist()
        val = torch.bincount(data.val_y.cpu(), minlength=len(class_names)).tolist()
    else:
        t, v = Counter(label for _, label in data.train_set.items), Counter(label for _, label in data.val_set.items)
        train, val = [t.get(i, 0) for i in range(len(class_names))], [v.get(i, 0) for i in range(len(class_names))]
    return dict(zip(class_names, train)), dict(zip(class_names, val))


def prepare_data(cfg: TrainConfig, device: torch.device, channels_last: bool, emit: Callable[[TrainEvent], None],
                 progress: Progress, *, rank: int = 0, world_size: int = 1) -> PreparedData:
    """The run's data; with world_size > 1, set up to yield process `rank`'s shard (data/shard.py)."""
    pre = eval_preprocess(cfg)
    shard = {"rank": rank, "world_size": world_size, "weighted_sampler": cfg.balance == "weighted-sampler"}
    skipped: list[str] = []
    data: TrainData
    if cfg.dataset == "cifar10":
        emit(Status("Loading CIFAR-10"))
        base = locate_cifar10(cfg.data, download_if_missing=cfg.download, progress=progress)
        train, val, class_names = load_cifar10(base)
        description = {"name": "CIFAR-10", "path": str(base), "val_source": "CIFAR-10 test set"}
        data = TensorData(train, val, pre, device, channels_last=channels_last, augment=cfg.augment, hflip=cfg.hflip,
                          **shard)
    else:
        root = Path(cfg.data).expanduser()
        emit(Status(f"Scanning {root}"))
        split = scan_folder(root, val_split=cfg.val_split, seed=cfg.seed, exclude=cfg.exclude, relabel=cfg.relabel)
        for message in split.warnings:
            emit(WarningEvent(message))
        class_names = split.class_names
        description = {"name": root.name, "path": str(root.resolve()), "layout": split.layout,
                       "val_source": "val/ folder" if split.layout == "split"
                       else f"{cfg.val_split:.0%} stratified split (seed {cfg.seed})"}
        if cfg.exclude:
            description["excluded_files"] = len(cfg.exclude)
        if cfg.relabel:
            description["relabelled_files"] = len(cfg.relabel)
        est_bytes = (len(split.train) + len(split.val)) * 3 * pre.input_size ** 2
        if pre.input_size <= TENSOR_PATH_MAX_SIZE and est_bytes <= cfg.cache_mb * 2**20:
            train, bad_t = folder_to_arrays(split.train, pre, progress, "Loading training images")
            val, bad_v = folder_to_arrays(split.val, pre, progress, "Loading validation images")
            skipped = bad_t + bad_v
            data = TensorData(train, val, pre, device, channels_last=channels_last, augment=cfg.augment,
                              hflip=cfg.hflip, **shard)
        else:
            emit(Status("Preparing the image loader"))
            data = LoaderData(split, pre, device, seed=cfg.seed, batch_size=cfg.batch_size, workers=cfg.workers,
                              cache_mb=cfg.cache_mb, channels_last=channels_last, augment=cfg.augment,
                              hflip=cfg.hflip, progress=progress, **shard)
            skipped = list(data.skipped)
        if skipped:
            emit(skipped_warning(skipped))
    try:
        _check_usable(data, class_names, cfg, skipped)
    except DatasetError:
        data.close()
        raise
    train_counts, val_counts = _usable_counts(data, class_names)
    description.update(train_images=data.n_train, val_images=data.n_val, skipped_images=len(skipped),
                       data_path=data.kind, class_counts=train_counts, val_class_counts=val_counts)
    emit(DatasetSummary(description))
    return PreparedData(data, class_names, description, pre)


def _check_usable(data: TrainData, class_names: list[str], cfg: TrainConfig, skipped: list[str]) -> None:
    train_counts, _ = _usable_counts(data, class_names)
    empty = [name for name, n in train_counts.items() if n == 0]
    if empty:
        raise DatasetError(f"class{'es' if len(empty) > 1 else ''} {', '.join(repr(n) for n in empty)} "
                           f"{'have' if len(empty) > 1 else 'has'} no usable training images"
                           f"{' (the others could not be read)' if skipped else ''}; add readable images to "
                           f"{'those folders' if len(empty) > 1 else 'that folder'} or remove "
                           f"{'them' if len(empty) > 1 else 'it'}")
    if data.steps_per_epoch(cfg.batch_size) < 1:
        per_process = data.n_train // max(1, cfg.world_size)
        suggestion = max(1, 2 ** int(math.log2(max(2, per_process // 2))))
        if cfg.world_size > 1:
            raise DatasetError(f"the training set has {data.n_train} usable images, {per_process} for each of the "
                               f"{cfg.world_size} processes: fewer than one batch of {cfg.batch_size} (the batch size "
                               f"is per process); lower the batch size (for example to {suggestion}), run fewer "
                               "processes or add images")
        raise DatasetError(f"the training set has {data.n_train} usable images, fewer than one batch of "
                           f"{cfg.batch_size}; lower the batch size (for example to {suggestion}) or add images")
    if data.n_val == 0:
        raise DatasetError("no usable validation images; add images or raise the validation split")
