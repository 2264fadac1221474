"""Dataset health check: what is wrong with a folder of class folders before a model is trained on it.

Reports unreadable files, class counts with an imbalance warning and a remedy, exact duplicates (same
bytes), near-duplicates (near_duplicates.py: difference-hash bands find candidates, a look at the pixels
decides), duplicates that cross the train/validation split (leakage: validation accuracy then measures
memory, not learning), and images much smaller than the model's input size.

Every file is read once, in threads, with progress and cancel (hashed in chunks, at most MAX_FILE_BYTES);
the comparison afterwards is linear in the number of files plus a small cost per candidate pair.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from resnet_gui.text import binary_size

from ..data.folders import FolderSplit, scan_folder
from ..errors import ImageLoadError
from ..images import load_image
from ..progress import NO_PROGRESS, Progress
from .metrics import imbalanced
from .near_duplicates import Looks, looks_of, near_pairs, star_groups

SMALL_FRACTION = 0.5   # "much smaller": shorter side below half the model's input size
MAX_FILE_BYTES = 2**30  # larger files are reported, not read (no image the app can decode is this large)
CHUNK_BYTES = 2**20
# The remedy suggested for class imbalance (TrainConfig.balance; benchmarks/bench_balance.py measured it)
SUGGESTED_BALANCE = "weighted-loss"


@dataclass
class ImageFacts:
    path: Path
    label: int
    split: str                    # "train", "val" or "test"
    sha1: str = ""
    looks: Looks | None = None
    size: tuple[int, int] | None = None
    error: str | None = None


@dataclass
class DataReport:
    root: str
    layout: str
    class_names: list[str]
    counts: dict[str, dict[str, int]]          # class -> {"train": n, "val": n, "unreadable": n}
    unreadable: list[dict] = field(default_factory=list)
    exact_duplicates: list[list[str]] = field(default_factory=list)
    near_duplicates: list[list[str]] = field(default_factory=list)
    leakage: list[dict] = field(default_factory=list)
    small_images: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images: int = 0
    # when imbalanced(): {"largest", "largest_images", "smallest", "smallest_images", "ratio", "remedy"}
    imbalance: dict | None = None

    @property
    def problems(self) -> int:
        return (len(self.unreadable) + len(self.exact_duplicates) + len(self.near_duplicates) + len(self.leakage)
                + len(self.small_images))

    def to_json(self) -> dict:
        return {"root": self.root, "layout": self.layout, "images": self.images, "class_names": self.class_names,
                "counts": self.counts, "unreadable": self.unreadable, "exact_duplicates": self.exact_duplicates,
                "near_duplicates": self.near_duplicates, "leakage": self.leakage, "small_images": self.small_images,
                "warnings": self.warnings, "imbalance": self.imbalance}

    def exclusions(self) -> list[str]:
        """Files a user would usually leave out: unreadable ones and all but the first of each duplicate group."""
        out = [u["path"] for u in self.unreadable]
        for group in self.exact_duplicates + self.near_duplicates:
            out.extend(group[1:])
        return sorted(set(out))


def file_sha1(path: os.PathLike | str, limit: int = MAX_FILE_BYTES) -> str:
    """The SHA-1 of a regular file, read in 1 MiB chunks; ImageLoadError for anything else or anything larger
    than `limit` (a 1.8 GB sparse "jpg" once exhausted memory here)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ImageLoadError(f"{path}: not a regular file (a pipe, socket or device)")
        if info.st_size > limit:
            raise ImageLoadError(f"{path}: too large to check ({binary_size(info.st_size)}; the limit is "
                                 f"{binary_size(limit)}); no image the app can open is that large")
        digest, read = hashlib.sha1(), 0
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                read += len(chunk)
                if read > limit:  # it grew while being read
                    raise ImageLoadError(f"{path}: too large to check (more than {binary_size(limit)})")
                digest.update(chunk)
        return digest.hexdigest()
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _facts(item: ImageFacts) -> ImageFacts:
    try:
        item.sha1 = file_sha1(item.path)
        image = load_image(item.path, min_side=32)
        item.looks = looks_of(image)
        item.size = image.size
        from PIL import Image

        with Image.open(item.path) as header:  # the real size (load_image may have reduced a big one)
            item.size = header.size
    except ImageLoadError as exc:
        item.error = str(exc).removeprefix(f"{item.path}: ")
    except OSError as exc:
        item.error = exc.strerror or str(exc)
    return item


def _groups(keys: dict[str, list[ImageFacts]]) -> list[list[ImageFacts]]:
    return [sorted(group, key=lambda f: str(f.path)) for group in keys.values() if len(group) > 1]


def _near_groups(items: list[ImageFacts], progress: Progress = NO_PROGRESS) -> list[list[ImageFacts]]:
    """Near-duplicate groups (near_duplicates.py), exact copies left to the exact list; star-shaped in path
    order."""
    progress.update("Comparing similar images", 0, 0)
    pairs, _ = near_pairs([f.looks for f in items], progress.cancelled)
    progress.check()
    pairs = pairs[[items[i].sha1 != items[j].sha1 for i, j in pairs.tolist()]].reshape(-1, 2)
    order = sorted(range(len(items)), key=lambda i: str(items[i].path))
    return [[items[i] for i in group] for group in star_groups(len(items), pairs, order)]


def check_folder(root: os.PathLike | str, *, val_split: float = 0.2, seed: int = 0, input_size: int | None = None,
                 progress: Progress = NO_PROGRESS, split: FolderSplit | None = None) -> DataReport:
    """The health report of a dataset folder (the layout and split the training would use)."""
    split = split or scan_folder(root, val_split=val_split, seed=seed)
    items = [ImageFacts(p, label, "train") for p, label in split.train] + \
            [ImageFacts(p, label, "val") for p, label in split.val] + \
            [ImageFacts(p, label, "test") for p, label in split.test]
    done = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="datacheck") as pool:
        for n, item in enumerate(pool.map(_facts, items), 1):
            done.append(item)
            if n % 16 == 0 or n == len(items):
                progress.check()
                progress.update("Checking images", n, len(items))
    names = split.class_names
    report = DataReport(root=str(Path(root).expanduser()), layout=split.layout, class_names=list(names),
                        counts={n: {"train": 0, "val": 0, "test": 0, "unreadable": 0} for n in names},
                        images=len(done))
    readable = []
    for f in done:
        if f.error:
            report.unreadable.append({"path": str(f.path), "class": names[f.label], "reason": f.error})
            report.counts[names[f.label]]["unreadable"] += 1
        else:
            report.counts[names[f.label]][f.split] += 1
            readable.append(f)
    train_counts = {n: c["train"] for n, c in report.counts.items()}
    hi = max(train_counts.items(), key=lambda kv: kv[1])
    lo = min(train_counts.items(), key=lambda kv: kv[1])
    if lo[1] == 0:
        report.warnings.append(f"Class '{lo[0]}' has no readable training images.")
    elif imbalanced(hi[1], lo[1]):
        report.imbalance = {"largest": hi[0], "largest_images": hi[1], "smallest": lo[0], "smallest_images": lo[1],
                            "ratio": round(hi[1] / lo[1], 2), "remedy": SUGGESTED_BALANCE}
        report.warnings.append(f"Class imbalance: '{hi[0]}' has {hi[1]} training images, '{lo[0]}' only {lo[1]} "
                               f"({hi[1] / lo[1]:.1f}x); accuracy will favour the larger classes: add images of the "
                               f"smaller classes, or balance them in training ({SUGGESTED_BALANCE} remedy).")
    by_sha: dict[str, list[ImageFacts]] = defaultdict(list)
    for f in readable:
        by_sha[f.sha1].append(f)
    exact = _groups(by_sha)
    near = _near_groups(readable, progress)
    report.exact_duplicates = [[str(f.path) for f in g] for g in exact]
    report.near_duplicates = [[str(f.path) for f in g] for g in near]
    for kind, groups in (("exact", exact), ("near", near)):
        for g in groups:
            splits = {f.split for f in g}
            if "train" in splits and ({"val", "test"} & splits):
                report.leakage.append({"kind": kind, "train": [str(f.path) for f in g if f.split == "train"],
                                       "held_out": [str(f.path) for f in g if f.split != "train"]})
    if report.leakage:
        report.warnings.append(f"{len(report.leakage)} duplicate group{'s' if len(report.leakage) > 1 else ''} "
                               "cross the train/validation split: validation accuracy will be too optimistic. "
                               "Exclude the copies.")
    if input_size:
        limit = input_size * SMALL_FRACTION
        for f in readable:
            if f.size and min(f.size) < limit:
                report.small_images.append({"path": str(f.path), "size": list(f.size)})
        if report.small_images:
            n = len(report.small_images)
            report.warnings.append(f"{n} image{'s are' if n > 1 else ' is'} much smaller than the model's input "
                                   f"({input_size} px) and will be blown up.")
    return report
