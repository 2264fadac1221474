"""Helpers for generating test data: checkpoints, images, datasets."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

# conftest.py starts the PyInstaller build in the background; test_packaging.py finds it under this key
# (here, not in conftest.py: `import conftest` may find tests/ui/conftest.py)
BUILD_KEY = pytest.StashKey[dict]()
# what the builds need on disk: measured 5.3 GB at the full edition's peak (a 5.1 GB bundle, torch's CUDA build
# being most of it, and a 0.15 GB work folder) and 0.3 GB for the classify edition, plus a margin
BUILD_DISK_BYTES = 6 * 2**30 + 2**29


def make_checkpoint(path, arch="resnet18_cifar", class_names=None, seed=0, favour=None, metrics=None, notes=None):
    """Save a checkpoint in our format. favour=i biases the head so every image is classed as i."""
    import torch

    from resnet_gui.core.models.archs import default_preprocess
    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint

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
                      dataset={"description": "generated"}, notes=notes or {})
    write_checkpoint(ckpt, path)
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


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_image(label, n_classes, size=32, seed=0):
    """A learnable image for class `label`: a class colour, a class-dependent bar, and noise."""
    rng = np.random.default_rng(seed)
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 151 + 160) % 256], dtype=np.float64)
    img = np.clip(hue + rng.normal(0, 25, size=(size, size, 3)), 0, 255)
    band = max(1, size // n_classes)
    img[label * band % size:(label * band % size) + band, :, :] = 255
    return img.astype(np.uint8)


def make_cifar(root, per_batch=20, n_test=40, n_batches=5):
    """cifar-10-batches-py in the real format (pickled dicts), small; MD5s will not match."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    k = 0

    def batch(n):
        nonlocal k
        labels = [(k + i) % 10 for i in range(n)]
        data = np.stack([class_image(lab, 10, seed=k + i).transpose(2, 0, 1).reshape(-1)
                         for i, lab in enumerate(labels)])
        k += n
        return {"data": data, "labels": labels, "batch_label": "generated"}

    for i in range(1, n_batches + 1):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(per_batch), fh, protocol=2)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(n_test), fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CIFAR_NAMES, "num_cases_per_batch": per_batch}, fh, protocol=2)
    return Path(root)


def make_folder_dataset(root, classes=("cats", "dogs", "owls"), per_class=8, size=(40, 32), bad=0, split=False):
    """Class folders of generated PNGs (optionally train/ and val/), plus `bad` broken files."""
    from PIL import Image

    root = Path(root)
    n = len(classes)
    for c, name in enumerate(classes):
        for i in range(per_class):
            sub = root / (("val" if i % 4 == 0 else "train") if split else "") / name
            sub.mkdir(parents=True, exist_ok=True)
            arr = class_image(c, n, size=max(size), seed=c * 1000 + i)[: size[1], : size[0]]
            Image.fromarray(arr).save(sub / f"{name}_{i:03d}.png")
    for j in range(bad):
        target = root / ("train" if split else "") / classes[0] / f"broken_{j}.png"
        target.write_bytes(b"\x89PNG\r\n\x1a\n this is broken")
    return root


# PyTorch made unimportable, as in the classify-only edition: `import torch` raises ModuleNotFoundError and
# importlib's find_spec answers None (resnet_gui/edition.py then says "classify")
WITHOUT_TORCH = "import sys\nfor _name in ('torch', 'torchvision', 'triton'): sys.modules[_name] = None\n"


def run_without_torch(code: str, *, timeout: float = 300, env: dict | None = None):
    """Run Python `code` in a subprocess where PyTorch cannot be imported; returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH + code], capture_output=True, text=True,
                          timeout=timeout, env=env)


def app_without_torch(*argv: str) -> str:
    """Code for run_without_torch: the `resnet-gui` command with these arguments; its exit status is the process's."""
    return f"from resnet_gui.__main__ import main\nsys.exit(main({list(argv)!r}))\n"


# no_torch_env: the same, for a process and every process it starts (a sitecustomize first on PYTHONPATH); it also
# writes, at exit, the torch modules that got loaded anyway to $RESNET_GUI_TEST_TORCH_REPORT.
_REPORT_AT_EXIT = """
import atexit, json, os

def _report():
    with open(os.environ["RESNET_GUI_TEST_TORCH_REPORT"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(sorted(m for m, module in sys.modules.items()
                                   if m.split(".")[0] in ("torch", "torchvision") and module is not None)) + "\\n")

if os.environ.get("RESNET_GUI_TEST_TORCH_REPORT"):
    atexit.register(_report)
"""


def no_torch_env(folder) -> dict:
    """os.environ for a subprocess in which torch cannot be imported (WITHOUT_TORCH as the sitecustomize in
    `folder`, first on PYTHONPATH, so the processes it starts inherit it); each process appends the torch modules
    it ended with to folder/torch-modules.jsonl (see torch_modules_loaded)."""
    import os

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(WITHOUT_TORCH + _REPORT_AT_EXIT, encoding="utf-8")
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), root, os.environ.get("PYTHONPATH", "")]),
               RESNET_GUI_TEST_TORCH_REPORT=str(folder / "torch-modules.jsonl"), QT_QPA_PLATFORM="offscreen")
    return env


def torch_modules_loaded(folder) -> list[list[str]]:
    """Per process run with no_torch_env(folder): the torch modules it had loaded at exit (each list empty when
    none got in)."""
    import json

    report = Path(folder) / "torch-modules.jsonl"
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()] if report.exists() else []


def make_distinct_folder(root, classes=("cats", "dogs", "owls"), per_class=8, size=(40, 32)):
    """Class folders of PNGs that look different from each other (a smooth random colour field each, with a
    class-dependent bar): unlike make_folder_dataset's images (a class colour plus pixel noise, alike to the
    eye and to the health check's near-duplicate search)."""
    from PIL import Image

    root = Path(root)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng(c * 1000 + i)
            field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
            arr = np.array(field)
            band = max(1, size[1] // len(classes))
            arr[c * band:(c + 1) * band] = 255
            Image.fromarray(arr).save(root / name / f"{name}_{i:03d}.png")
    return root
