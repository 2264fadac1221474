"""Give an imported model what training gives every model: familiarity data (and a temperature) fitted on a
folder of labelled images, so it can say "this looks unlike anything I was trained on".

The folder is laid out as root/<class>/… with the model's class names (a subset is fine). Its images are
split per class (80 % describe what the model saw, 20 % set the threshold and the temperature), decoded
through the prediction path, and the checkpoint is saved again atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..data.folders import stratified_split
from ..errors import DatasetError
from ..inference import familiarity
from ..inference.calibration import calibration_report
from ..inference.predictor import Predictor
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..progress import NO_PROGRESS, Progress
from .labelled import folder_files

MIN_IMAGES = 10


def _features(predictor: Predictor, paths: list[Path], progress: Progress, what: str, offset: int, total: int):
    """Penultimate features and log-probabilities (logits up to a constant) of the readable images, through the
    prediction path (one forward pass per batch); the indices of the images that could be read."""
    from ..errors import ImageLoadError

    feats, logits, kept = [], [], []
    with familiarity.penultimate_features(predictor.model) as box:
        for start in range(0, len(paths), 32):
            progress.check()
            batch, idx = [], []
            for i, path in enumerate(paths[start:start + 32]):
                try:
                    batch.append(predictor.load(str(path), name=str(path)))
                    idx.append(start + i)
                except ImageLoadError:
                    continue  # an unreadable file is simply left out
            if batch:
                probs = predictor.probabilities(torch.stack(batch))
                feats.append(box["features"].cpu())
                logits.append(probs.clamp_min(1e-12).log())
                kept.extend(idx)
            progress.update(what, offset + min(start + 32, len(paths)), total)
    if not feats:
        return torch.empty(0, 0), torch.empty(0, 0), []
    return torch.cat(feats), torch.cat(logits), kept


def add_familiarity(checkpoint_path: os.PathLike | str, folder: os.PathLike | str, *,
                    progress: Progress = NO_PROGRESS, calibrate: bool = False) -> dict:
    """Fit familiarity data for the model in `checkpoint_path` from the labelled images in `folder`; save it in
    place. Returns a summary for the user.

    calibrate=True also fits a temperature (when the model has none) on a fifth of the folder: only sound when
    the folder holds images the model was NOT trained on -- on its own training images a model looks far more
    certain than it is, and the temperature would make it overconfident."""
    path = Path(checkpoint_path)
    ckpt = load_checkpoint(path)
    files = folder_files(folder, ckpt.class_names)
    if len(files.paths) < MIN_IMAGES:
        raise DatasetError(f"{folder} has {len(files.paths)} images of the model's classes; at least {MIN_IMAGES} "
                           "are needed to describe what it knows")
    fit_part, held_part = stratified_split(list(zip(files.paths, files.labels)), 0.2, 0)
    predictor = Predictor(load_checkpoint(path), device="cpu", source=path)
    total = len(fit_part) + len(held_part)
    fit_feats, _, fit_kept = _features(predictor, [p for p, _ in fit_part], progress, "Reading images", 0, total)
    held_feats, held_logits, held_kept = _features(predictor, [p for p, _ in held_part], progress,
                                                   "Reading images", len(fit_part), total)
    if len(fit_kept) < 2 or len(held_kept) < 2:
        raise DatasetError(f"too few readable images in {folder} to describe what the model knows")
    fit_labels = torch.tensor([fit_part[i][1] for i in fit_kept])
    held_labels = torch.tensor([held_part[i][1] for i in held_kept])
    source = f"{len(fit_kept)} images of {Path(folder).name}; threshold from {len(held_kept)} more"
    fam = familiarity.fit(fit_feats, fit_labels, held_feats, len(ckpt.class_names), source=source)
    ckpt.familiarity = fam.to_checkpoint()
    summary = {"images": len(fit_kept) + len(held_kept), "unknown_classes": files.unknown_classes,
               "calibrated": False}
    if calibrate and not ckpt.calibration:
        ckpt.calibration = calibration_report(held_logits, held_labels, source=f"{len(held_kept)} images of "
                                              f"{Path(folder).name}")
        summary["calibrated"] = True
    save_checkpoint(ckpt, path, half=ckpt.notes.get("weights_dtype") == "float16")
    return summary
