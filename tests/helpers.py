"""Helpers for generating test data: checkpoints, images, datasets."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def make_checkpoint(path, arch="resnet18_cifar", class_names=None, seed=0, favour=None, metrics=None):
    """Save a checkpoint in our format. favour=i biases the head so every image is classed as i."""
    import torch

    from resnet_gui.core.checkpoint import Checkpoint, save_checkpoint
    from resnet_gui.core.models import build_model, default_preprocess

    names = class_names or [f"c{i}" for i in range(10)]
    torch.manual_seed(seed)
    model = build_model(arch, len(names))
    if favour is not None:
        with torch.no_grad():
            model.fc.weight.mul_(0.01)
            model.fc.bias.zero_()
            model.fc.bias[favour] = 20.0
    ckpt = Checkpoint(arch=arch, class_names=list(names), preprocess=default_preprocess(arch),
                      state_dict=model.state_dict(), metrics=metrics or {"val_accuracy": 0.5},
                      dataset={"description": "generated"})
    save_checkpoint(ckpt, path)
    return Path(path)


def write_image(path, size=(40, 30), color=None, mode="RGB", fmt=None, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    if color is not None:
        arr[:] = color
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


class MarkerPayload:
    """Unpickling this runs code that creates a marker file (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def hostile_checkpoint(path, marker):
    import torch

    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": MarkerPayload(marker)}, path)
    return Path(path)


def plain_pickle(path, marker):
    with open(path, "wb") as fh:
        pickle.dump(MarkerPayload(marker), fh)
    return Path(path)
