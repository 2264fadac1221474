"""Give an imported model what training gives every model: familiarity data (and a temperature) fitted on a
folder of labelled images, so it can say "this looks unlike anything I was trained on".

The folder is laid out as root/<class>/… with the model's class names (a subset is fine). Its images are
split per class (80 % describe what the model saw, 20 % set the threshold and the temperature), decoded
through the prediction path, and the checkpoint is saved again atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.folders import stratified_split
from ..engines.choose import open_predictor
from ..errors import DatasetError
from ..inference import familiarity, input_stats, outliers
from ..inference.calibration import calibration_report
from ..inference.predictor import Predictor
from ..models.checkpoint import read_checkpoint, write_checkpoint
from ..progress import NO_PROGRESS, Progress
from .labelled import folder_files

MIN_IMAGES = 10


def _features(predictor: Predictor, paths: list[Path], progress: Progress, what: str, offset: int, total: int,
              keep: int = 0):
    """Penultimate features, logits and input statistics of the readable images, through the prediction path (one
    forward pass per batch, decoded ahead in threads); the indices of the images that could be read; the first
    `keep` of them as the model received them (uint8)."""
    feats, logits, stats, pixels, kept = [], [], [], [], []
    done = 0
    for batch in predictor.batches(paths, batch_size=32, cancelled=progress.cancelled):
        progress.check()
        if batch.decoded:  # an unreadable file is simply left out
            out = predictor.outputs(batch.pixels, ("logits", "features"))
            feats.append(out["features"])
            logits.append(out["logits"])
            stats.append(input_stats.image_stats(batch.pixels))
            if sum(len(p) for p in pixels) < keep:
                pixels.append(batch.pixels[:keep - sum(len(p) for p in pixels)])
            kept.extend(done + i for i in batch.decoded)
        done += len(batch.paths)
        progress.update(what, offset + done, total)
    progress.check()
    if not feats:
        empty = np.empty((0, 0), np.float32)
        return empty, empty, empty, np.empty((0, 0, 0, 3), np.uint8), []
    return (np.concatenate(feats), np.concatenate(logits), np.concatenate(stats),
            np.concatenate(pixels) if pixels else np.empty((0, 0, 0, 3), np.uint8), kept)


def _flags(predictor: Predictor, fam: familiarity.Familiarity):
    """The fitted check's unfamiliar decision on uint8 images, through the prediction path (outliers.py)."""
    return lambda pixels: fam.judge(predictor.outputs(pixels, ("features",))["features"], pixels)[1]


def add_familiarity(checkpoint_path: os.PathLike | str, folder: os.PathLike | str, *,
                    progress: Progress = NO_PROGRESS, calibrate: bool = False, int8_version: bool = True) -> dict:
    """Fit familiarity data for the model in `checkpoint_path` from the labelled images in `folder`; save it in
    place. Returns a summary for the user.

    calibrate=True also fits a temperature (when the model has none) on a fifth of the folder: only sound when
    the folder holds images the model was NOT trained on -- on its own training images a model looks far more
    certain than it is, and the temperature would make it overconfident.

    int8_version=True then builds and verifies the model's int8 version from the same folder (int8_version.py):
    the summary's "int8" says whether it was kept, and why not."""
    path = Path(checkpoint_path)
    ckpt = read_checkpoint(path)
    files = folder_files(folder, ckpt.class_names)
    if len(files.paths) < MIN_IMAGES:
        raise DatasetError(f"{folder} has {len(files.paths)} images of the model's classes; at least {MIN_IMAGES} "
                           "are needed to describe what it knows")
    fit_part, held_part = stratified_split(list(zip(files.paths, files.labels)), 0.2, 0)
    predictor = open_predictor(read_checkpoint(path), device="cpu", precision="fp32", path=path)
    total = len(fit_part) + len(held_part)
    fit_feats, _, fit_stats, _, fit_kept = _features(predictor, [p for p, _ in fit_part], progress,
                                                     "Reading images", 0, total)
    held_feats, held_logits, held_stats, held_pixels, held_kept = _features(
        predictor, [p for p, _ in held_part], progress, "Reading images", len(fit_part), total, keep=64)
    if len(fit_kept) < 2 or len(held_kept) < 2:
        raise DatasetError(f"too few readable images in {folder} to describe what the model knows")
    fit_labels = np.asarray([fit_part[i][1] for i in fit_kept], dtype=np.int64)
    held_labels = np.asarray([held_part[i][1] for i in held_kept], dtype=np.int64)
    source = f"{len(fit_kept)} images of {Path(folder).name}; threshold from {len(held_kept)} more"
    fam = familiarity.fit(fit_feats, fit_labels, held_feats, len(ckpt.class_names), source=source,
                          train_stats=fit_stats, val_stats=held_stats)
    progress.update("Measuring how well it flags unfamiliar images", total, total)
    held_flags = fam.judge(held_feats)[1] | fam.inputs.unusual(held_stats)
    fam.measured = outliers.measure(_flags(predictor, fam), held_pixels, ckpt.preprocess, val_flagged=held_flags)
    ckpt.familiarity = fam.to_checkpoint()
    summary = {"images": len(fit_kept) + len(held_kept), "unknown_classes": files.unknown_classes,
               "calibrated": False, "measured": fam.measured}
    if calibrate and not ckpt.calibration:
        ckpt.calibration = calibration_report(held_logits, held_labels, source=f"{len(held_kept)} images of "
                                              f"{Path(folder).name}")
        summary["calibrated"] = True
    write_checkpoint(ckpt, path, half=ckpt.notes.get("weights_dtype") == "float16")
    if int8_version:
        from .int8_version import add_int8

        record = add_int8(path, folder=folder, progress=progress)
        summary["int8"] = {k: record.get(k) for k in ("kept", "reason", "agreement", "sure_agreement", "images")}
    return summary
