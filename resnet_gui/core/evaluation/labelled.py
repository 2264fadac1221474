"""Labelled images in a folder: root/<class>/… with a model's class names (evaluation, familiarity data)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError
from ..images import walk_images


@dataclass
class LabelledFiles:
    paths: list[Path]
    labels: list[int]                 # indices into the model's class names
    description: str
    unknown_classes: dict[str, int] = field(default_factory=dict)  # folder name -> files left out


def folder_files(root: os.PathLike | str, class_names: list[str]) -> LabelledFiles:
    """root/<class>/… (or root/val/<class>/… when root holds train/ and val/): the files of every class folder
    whose name is one of the model's classes; other folders are counted, not guessed."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; evaluation needs a folder with one sub-folder per class")
    base = root / "val" if (root / "train").is_dir() and (root / "val").is_dir() else root
    index = {name: i for i, name in enumerate(class_names)}
    out = LabelledFiles([], [], str(base))
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = walk_images(folder)
        if folder.name in index:
            out.paths.extend(files)
            out.labels.extend([index[folder.name]] * len(files))
        elif files:
            out.unknown_classes[folder.name] = len(files)
    if not out.paths:
        known = ", ".join(class_names[:10]) + (" …" if len(class_names) > 10 else "")
        raise DatasetError(f"{base} has no sub-folder named after one of the model's classes ({known}); put each "
                           "class's images in a folder with the class's name")
    return out
