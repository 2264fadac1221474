"""Folder datasets (ImageFolder layout): scan, stratified split, decode into memory.

Scanning and splitting need no torch (the Predict and Evaluate tabs list a model's validation images in the
classify-only edition): the split's shuffle is `torch.randperm` reproduced in numpy, bit for bit, so splits made
by earlier versions (and by training) are the same files.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..images import walk_images

VAL_NAMES = ("val", "valid", "validation")
IMBALANCE_RATIO = 5.0


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


def _images_in(folder: Path, exclude: frozenset[str] = frozenset()) -> list[Path]:
    """Image files under `folder` (walked iteratively, depth-limited; hidden files skipped), minus `exclude`."""
    return [p for p in walk_images(folder) if str(p) not in exclude]


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def _scan_classes(folder: Path, class_names: list[str] | None = None,
                  exclude: frozenset[str] = frozenset()) -> tuple[list[str], list[tuple[Path, int]]]:
    dirs = _class_dirs(folder)
    names = class_names or [d.name for d in dirs]
    index = {n: i for i, n in enumerate(names)}
    items: list[tuple[Path, int]] = []
    for d in dirs:
        if d.name not in index:
            raise DatasetError(f"{d}: class folder {d.name!r} is not among the training classes ({', '.join(names)})")
        files = _images_in(d, exclude)
        if not files and class_names is None:
            raise DatasetError(f"class folder {d} has no images; add images or remove the folder")
        items.extend((f, index[d.name]) for f in files)
    return names, items


def seeded_permutation(n: int, seed: int) -> list[int]:
    """What `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` returns on the CPU, without torch:
    torch seeds a Mersenne Twister (MT19937) with the seed's low 32 bits and, for n below 2**32 / 20, shuffles
    with one 32-bit draw per position (tests/core/data compares the two for many seeds and sizes)."""
    if n >= 2**32 // 20:
        raise ValueError("too many images to split in one class")
    draws = np.random.RandomState(int(seed) & 0xFFFFFFFF).randint(0, 2**32, size=max(n - 1, 0), dtype=np.uint32)
    order = list(range(n))
    for i in range(n - 1):
        z = int(draws[i]) % (n - i) + i
        order[i], order[z] = order[z], order[i]
    return order


def stratified_split(items: list[tuple[Path, int]], val_split: float, seed: int):
    """Per class, a seeded shuffle; round(n * val_split) images (at least 1 when n >= 2) go to val."""
    by_class: dict[int, list[tuple[Path, int]]] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label]
        order = seeded_permutation(len(group), int(seed) * 1000 + label)
        n_val = min(len(group) - 1, max(1 if len(group) >= 2 else 0, round(len(group) * val_split)))
        val.extend(group[i] for i in order[:n_val])
        train.extend(group[i] for i in order[n_val:])
    return sorted(train), sorted(val)


def _relabelled(items: list[tuple[Path, int]], names: list[str], relabel: dict[str, str]) -> list[tuple[Path, int]]:
    if not relabel:
        return items
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({c for c in relabel.values() if c not in index})
    if unknown:
        raise DatasetError(f"relabelled files name {'classes' if len(unknown) > 1 else 'a class'} the folder does not "
                           f"have: {', '.join(unknown[:5])}; the classes are {', '.join(names[:10])}")
    return [(p, index[relabel[str(p)]]) if str(p) in relabel else (p, label) for p, label in items]


def scan_folder(root: os.PathLike | str, *, val_split: float = 0.2, seed: int = 0,
                exclude: list[str] | None = None, relabel: dict[str, str] | None = None) -> FolderSplit:
    """Read the layout: root/{train,val[,test]}/<class>/..., or root/<class>/... split by val_split.
    `exclude`: files to leave out (absolute paths, e.g. duplicates found by the health check); `relabel`: files
    to train under another class than their folder's (absolute path -> class name, e.g. label mistakes the
    health check found). The user's folder is never touched. The split of the remaining files is seeded like
    any other, each file with the class it is trained under."""
    root = Path(root).expanduser()
    skip = frozenset(str(Path(p).expanduser()) for p in exclude or [])
    moved = {str(Path(p).expanduser()): c for p, c in (relabel or {}).items()}
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; a dataset is a folder with one sub-folder per class")
    val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        names, train = _scan_classes(root / "train", exclude=skip)
        _, val = _scan_classes(val_dir, names, skip)
        test = _scan_classes(root / "test", names, skip)[1] if (root / "test").is_dir() else []
        split = FolderSplit(names, sorted(_relabelled(train, names, moved)), sorted(_relabelled(val, names, moved)),
                            sorted(_relabelled(test, names, moved)), layout="split")
    else:
        if not _class_dirs(root):
            raise DatasetError(f"{root} has no class folders; put the images of each class in its own sub-folder "
                               f"(for example {root / 'cats'} and {root / 'dogs'})")
        names, items = _scan_classes(root, exclude=skip)
        train, val = stratified_split(_relabelled(items, names, moved), val_split, seed)
        split = FolderSplit(names, train, val, layout="single")
    if len(split.class_names) < 2:
        n = len(split.class_names)
        raise DatasetError(f"{root} has {n} class folder{'' if n == 1 else 's'}; a classifier needs at least 2")
    counts = split.counts(split.train)
    empty = [n for n, c in counts.items() if c == 0]
    if empty:
        raise DatasetError(f"{'classes' if len(empty) > 1 else 'class'} {', '.join(empty)} "
                           f"{'have' if len(empty) > 1 else 'has'} no training images in {root}")
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


def move_to_class(path: os.PathLike | str, given: str, target: str) -> Path:
    """Move a file from its class folder `given` into the sibling class folder `target` (same place inside it),
    by one rename: never half-moved. Returns the new path. Undo: move_to_class(new, target, given)."""
    src = Path(path)
    folder = next((p for p in src.parents if p.name == given), None)
    if folder is None:
        raise DatasetError(f"{src} is not inside a class folder named {given!r}; it was not moved")
    if not target or Path(target).name != target or target.startswith("."):
        raise DatasetError(f"{target!r} is not a class folder name; {src.name} was not moved")
    dst = folder.parent / target / src.relative_to(folder)
    if not (folder.parent / target).is_dir():
        raise DatasetError(f"there is no class folder {folder.parent / target}; {src.name} was not moved")
    if dst.exists():
        raise DatasetError(f"{dst} already exists; {src.name} was not moved (rename one of them first)")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
    except OSError as exc:
        raise DatasetError(f"{src.name} could not be moved to {dst.parent}: {exc.strerror or exc}") from None
    return dst
