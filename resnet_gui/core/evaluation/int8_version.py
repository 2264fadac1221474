"""Give a model its verified int8 version (core/inference/int8.py), from the images it was trained on.

Calibration: up to 64 of its training images (eval preprocessing, never augmented; at most half of them, so
that a small set keeps images to verify on). Verification: every image
the calibration did not see that the data allows -- the validation split plus the training images left out of
calibration (up to MAX_VERIFY in all) -- with their labels, so accuracy and calibration error are compared too.

Where the images come from:
* after training, and `resnet-gui models calibrate NAME` without --data: the run's own folder and split,
  recomputed from the checkpoint's saved settings (as `evaluate --data validation` does), or CIFAR-10's arrays;
* *Add familiarity data* and `models calibrate NAME --data FOLDER`: the folder given (a class folder).

The result is stored in the checkpoint, atomically: the figures always (why it was not kept, too), the int8
graph only when it passed. No torch, except to read CIFAR-10.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from ..data.folders import scan_folder, stratified_split
from ..errors import DatasetError, ResnetGuiError
from ..inference import int8
from ..inference.calibration import temperature_of
from ..inference.ort_backend import OrtBackend
from ..models.checkpoint import read_checkpoint, weights_fingerprint, write_checkpoint
from ..progress import NO_PROGRESS, Progress
from .labelled import folder_files

MAX_VERIFY = 2000


def decode(paths: list[Path], pre, progress: Progress = NO_PROGRESS, what: str = "Reading images",
           offset: int = 0, total: int | None = None) -> tuple[np.ndarray, list[int]]:
    """uint8 N x S x S x 3 of the readable files (the prediction path's decoding) and their positions."""
    from ..inference.batches import decode_batches

    rows, kept, done = [], [], 0
    total = total or len(paths)
    for batch in decode_batches(paths, pre, batch_size=32, cancelled=progress.cancelled):
        progress.check()
        if batch.decoded:
            rows.append(batch.pixels)
            kept.extend(done + i for i in batch.decoded)
        done += len(batch.paths)
        progress.update(what, offset + done, total)
    progress.check()
    size = pre.input_size
    return (np.concatenate(rows) if rows else np.empty((0, size, size, 3), np.uint8)), kept


def _files_of_run(ckpt) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """(training files, validation files) of the folder run that made `ckpt`, as labelled (path, class) pairs."""
    ds, cfg = ckpt.dataset or {}, ckpt.train_config or {}
    path = ds.get("path")
    if not isinstance(path, str) or not path:
        raise DatasetError("the model does not say which images it was trained on; give a folder of its classes")
    if not Path(path).is_dir():
        raise DatasetError(f"the images this model was trained on are no longer at {path}; give a folder of its "
                           "classes instead")
    split = scan_folder(path, val_split=float(cfg.get("val_split", 0.2)), seed=int(cfg.get("seed", 0)),
                        exclude=cfg.get("exclude") if isinstance(cfg.get("exclude"), list) else None)
    index = {name: i for i, name in enumerate(ckpt.class_names)}
    if [n for n in split.class_names if n not in index]:
        raise DatasetError(f"the classes in {path} changed since the model was trained; choose a folder instead")
    train = [(p, index[split.class_names[label]]) for p, label in split.train]
    return train, [(p, index[split.class_names[label]]) for p, label in split.val]


def _cifar_arrays(ckpt, progress: Progress):
    from ..data.cifar import load_cifar10, locate_cifar10

    train, val, _names = load_cifar10(locate_cifar10(ckpt.dataset.get("path"), progress=progress))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train.labels), size=min(len(train.labels), int8.CALIBRATION_IMAGES), replace=False)
    cal = np.ascontiguousarray(train.images[pick].permute(0, 2, 3, 1).numpy())
    held = np.ascontiguousarray(val.images[:MAX_VERIFY].permute(0, 2, 3, 1).numpy())
    return cal, held, val.labels[:MAX_VERIFY].numpy()


def images_for_int8(ckpt, folder: os.PathLike | str | None = None, progress: Progress = NO_PROGRESS):
    """(calibration uint8 images, held-out uint8 images, their labels) for `ckpt`: from `folder` (a class folder),
    or from the run that made it."""
    pre = ckpt.preprocess
    if folder is None and (ckpt.train_config.get("dataset") == "cifar10" or ckpt.dataset.get("name") == "CIFAR-10"):
        return _cifar_arrays(ckpt, progress)
    if folder is not None:
        files = folder_files(folder, ckpt.class_names)
        train, held = stratified_split(list(zip(files.paths, files.labels)), 0.2, 0)
    else:
        train, held = _files_of_run(ckpt)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))
    n_cal = min(int8.CALIBRATION_IMAGES, max(16, len(train) // 2))  # small sets keep images to verify on
    cal_items = [train[i] for i in order[:n_cal]]
    spare = [train[i] for i in order[n_cal:]]
    verify_items = (held + spare)[:MAX_VERIFY]
    total = len(cal_items) + len(verify_items)
    cal, _ = decode([p for p, _ in cal_items], pre, progress, "Reading calibration images", 0, total)
    images, kept = decode([p for p, _ in verify_items], pre, progress, "Reading images to verify on",
                          len(cal_items), total)
    return cal, images, np.asarray([verify_items[i][1] for i in kept], dtype=np.int64)


def build_int8(ckpt, calibration: np.ndarray, held: np.ndarray, labels: np.ndarray | None,
               progress: Progress = NO_PROGRESS) -> tuple[dict, bytes | None]:
    """The int8 record (figures, kept or why not) and graph (None unless kept) for `ckpt` (weights loaded)."""
    from ..inference.onnx_graph import build_graph

    state = {k: np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
             for k, v in ckpt.state_dict.items()}
    record = {"built": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
              "calibration_images": len(calibration),
              "fingerprint": weights_fingerprint(ckpt.arch, state, ckpt.preprocess)}
    if len(calibration) == 0:
        return {**record, "kept": False, "images": 0, "reason": "no readable images to calibrate it on"}, None
    progress.update("Building the int8 version", 0, 1)
    fp32_bytes = build_graph(ckpt.arch, state, len(ckpt.class_names), ckpt.preprocess).SerializeToString()
    progress.check()
    int8_bytes = int8.quantize(fp32_bytes, calibration)
    progress.check()
    progress.update("Verifying the int8 version against fp32", 0, 1)
    fp32, quantized = OrtBackend(fp32_bytes), OrtBackend(int8_bytes, precision="int8")
    fam = None
    if ckpt.familiarity is not None:
        from ..inference.familiarity import Familiarity

        fam = Familiarity.from_checkpoint(ckpt.familiarity, num_classes=len(ckpt.class_names),
                                          feature_dim=int(np.asarray(ckpt.state_dict["fc.weight"]).shape[1]))
    wanted = ("logits", "features") if fam is not None else ("logits",)
    figures = int8.verify(lambda x: fp32.run(x, wanted), lambda x: quantized.run(x, wanted),
                          held, labels, temperature=temperature_of(ckpt.calibration), familiarity=fam)
    progress.update("Verifying the int8 version against fp32", 1, 1)
    record.update(figures)
    return record, int8_bytes if record["kept"] else None


def add_int8(checkpoint_path: os.PathLike | str, *, folder: os.PathLike | str | None = None,
             progress: Progress = NO_PROGRESS) -> dict:
    """Build, verify and store the int8 version of the model in `checkpoint_path` (see the module docstring).
    Returns the stored record. Data that cannot be found is recorded as the reason, never raised."""
    path = Path(checkpoint_path)
    ckpt = read_checkpoint(path)
    try:
        cal, held, labels = images_for_int8(ckpt, folder, progress)
        record, blob = build_int8(ckpt, cal, held, labels, progress)
    except (DatasetError, OSError) as exc:
        if folder is not None:
            raise
        text = str(exc) if isinstance(exc, ResnetGuiError) else f"its images could not be read ({exc})"
        record, blob = {"kept": False, "images": 0, "reason": text}, None
    ckpt.int8, ckpt.int8_model = record, blob
    write_checkpoint(ckpt, path, half=ckpt.notes.get("weights_dtype") == "float16")
    return record
