"""Dataset health check: what is wrong with a folder of class folders before a model is trained on it.

Reports unreadable files, class counts with an imbalance warning and a remedy, exact duplicates (same bytes),
near-duplicates (a 64-bit difference hash within a few bits, found through hash bands: no pairwise
comparison), duplicates that cross the train/validation split (leakage: validation accuracy then
measures memory, not learning), and images much smaller than the model's input size.

Every file is decoded once, in threads, with progress and cancel; the comparison afterwards is linear
in the number of files.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..data.folders import FolderSplit, scan_folder
from ..errors import ImageLoadError
from ..images import load_image
from ..progress import NO_PROGRESS, Progress

NEAR_BITS = 3          # near-duplicates differ in at most this many of the 64 hash bits
BANDS = NEAR_BITS + 1  # pigeonhole: two hashes within NEAR_BITS bits share at least one whole band
SMALL_FRACTION = 0.5   # "much smaller": shorter side below half the model's input size
BALANCE_RATIO = 3.0    # a remedy is suggested when the largest class has more than this x the smallest's images
# The remedy suggested for class imbalance (TrainConfig.balance; benchmarks/bench_balance.py measured it)
SUGGESTED_BALANCE = "weighted-loss"


@dataclass
class ImageFacts:
    path: Path
    label: int
    split: str                    # "train", "val" or "test"
    sha1: str = ""
    dhash: int | None = None
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
    # above BALANCE_RATIO: {"largest", "largest_images", "smallest", "smallest_images", "ratio", "remedy"}
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


def difference_hash(image) -> int:
    """64-bit dHash: a 9x8 grey thumbnail, one bit per horizontal neighbour comparison."""
    small = image.convert("L").resize((9, 8))
    px = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return bits


def _facts(item: ImageFacts) -> ImageFacts:
    try:
        with open(item.path, "rb") as fh:
            item.sha1 = hashlib.sha1(fh.read()).hexdigest()
        image = load_image(item.path, min_side=32)
        item.dhash = difference_hash(image)
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


def _near_groups(items: list[ImageFacts], exact_pairs: set[frozenset]) -> list[list[ImageFacts]]:
    """Groups of images within NEAR_BITS bits of the group's first image (in path order), candidates found
    through shared 64/BANDS-bit bands. Star-shaped, not transitive: a chain of slightly different images (a
    slow pan, a series of scans) never becomes one huge group."""
    width, mask = 64 // BANDS, (1 << (64 // BANDS)) - 1
    order = sorted(range(len(items)), key=lambda i: str(items[i].path))
    keys = [[(b, (f.dhash >> (b * width)) & mask) for b in range(BANDS)] for f in items]
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in order:
        for key in keys[i]:
            buckets[key].append(i)
    taken: set[int] = set()
    groups = []
    for i in order:
        if i in taken:
            continue
        members: set[int] = set()
        for key in keys[i]:
            bucket = buckets[key]
            if 1 < len(bucket) <= 200:  # a band shared by hundreds: flat images, not duplicates
                members.update(bucket)
        close = [j for j in members if j != i and j not in taken
                 and bin(items[i].dhash ^ items[j].dhash).count("1") <= NEAR_BITS
                 and frozenset((i, j)) not in exact_pairs]
        if close:
            group = [i, *sorted(close, key=lambda j: str(items[j].path))]
            taken.update(group)
            groups.append([items[j] for j in group])
    return groups


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
    elif hi[1] > BALANCE_RATIO * lo[1]:
        report.imbalance = {"largest": hi[0], "largest_images": hi[1], "smallest": lo[0], "smallest_images": lo[1],
                            "ratio": round(hi[1] / lo[1], 2), "remedy": SUGGESTED_BALANCE}
        report.warnings.append(f"Class imbalance: '{hi[0]}' has {hi[1]} training images, '{lo[0]}' only {lo[1]} "
                               f"({hi[1] / lo[1]:.1f}x); accuracy will favour the larger classes: add images of the "
                               f"smaller classes, or balance them in training ({SUGGESTED_BALANCE} remedy).")
    by_sha: dict[str, list[ImageFacts]] = defaultdict(list)
    for f in readable:
        by_sha[f.sha1].append(f)
    exact = _groups(by_sha)
    index = {id(f): i for i, f in enumerate(readable)}
    exact_pairs = {frozenset((index[id(a)], index[id(b)])) for g in exact for a in g for b in g if a is not b}
    near = _near_groups(readable, exact_pairs)
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
