"""Evaluate a model on labelled data: a folder of class folders, the CIFAR-10 test set, or the validation
split of the run that made the model.

Files go through exactly the decode, preprocessing and batching path of folder prediction
(`Predictor.predict_paths`, the same engine: core/engines/choose.py), so every figure agrees with what `predict`
says about the same images. Classes the model does not know are reported, never guessed; a subset of the model's
classes is fine. Folders and validation splits need no torch; the CIFAR-10 test set is read with torchvision.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.folders import scan_folder
from ..errors import DatasetError
from ..inference.prediction import DEFAULT_THRESHOLD
from ..inference.predictor import Predictor
from ..progress import NO_PROGRESS, Progress
from .curves import class_curves
from .labelled import LabelledFiles, folder_files
from .metrics import INTERVAL_BELOW, Figures, accuracy_with_interval, figures

MAX_MISCLASSIFIED = 2000


@dataclass
class Evaluation:
    figures: Figures
    model: str
    data: str
    tta: bool
    misclassified: list[dict]          # {path, true, predicted, confidence}, most confident first
    failed: list[dict]                 # {path, error}: files that could not be read
    unknown_classes: dict[str, int]
    calibrated: bool
    rows: list[dict] = field(default_factory=list)  # every image: path, true, predicted, confidence
    model_path: str | None = None      # the checkpoint file: an export must never replace it
    caveats: list[str] = field(default_factory=list)  # why the figure is not a result (training_overlap)
    curves: list = field(default_factory=list)      # curves.ClassCurve per class: precision-recall and ROC
    operating_points: dict = field(default_factory=dict)  # the model's own per-class thresholds, as stored

    def threshold_of(self, class_name: str, threshold: float = DEFAULT_THRESHOLD) -> float:
        """The bar an answer of this class must reach: the reader's threshold, or the class's own when higher."""
        own = (self.operating_points.get(class_name) or {}).get("threshold")
        return max(threshold, own) if own is not None else threshold

    def to_json(self, threshold: float = DEFAULT_THRESHOLD) -> dict:
        return {**self.figures.to_json(), "model": self.model, "data": self.data, "tta": self.tta,
                "calibrated": self.calibrated, "misclassified": self.misclassified, "failed": self.failed,
                "unknown_classes": self.unknown_classes, "caveats": list(self.caveats), "threshold": threshold,
                "operating_points": self.operating_points,
                "curves": [c.to_json(self.threshold_of(c.name, threshold)) for c in self.curves]}


def run_validation_files(ckpt) -> LabelledFiles:
    """The validation split of the folder run that made the model, recomputed from its saved settings."""
    ds, cfg = ckpt.dataset or {}, ckpt.train_config or {}
    path = ds.get("path")
    if cfg.get("dataset") == "cifar10" or ds.get("name") == "CIFAR-10":
        raise DatasetError("this model was trained on CIFAR-10: evaluate it on the CIFAR-10 test set instead")
    if not isinstance(path, str) or not Path(path).is_dir():
        raise DatasetError(f"the data this model was trained on is no longer at {path!r}; choose a folder to "
                           "evaluate on instead")
    split = scan_folder(path, val_split=float(cfg.get("val_split", 0.2)), seed=int(cfg.get("seed", 0)))
    index = {name: i for i, name in enumerate(ckpt.class_names)}
    if [n for n in split.class_names if n not in index]:
        raise DatasetError(f"the classes in {path} changed since the model was trained; choose a folder instead")
    return LabelledFiles([p for p, _ in split.val], [index[split.class_names[label]] for _, label in split.val],
                         f"validation split of {path}")


def training_overlap(ckpt, paths: list[str], data: str) -> list[str]:
    """Sentences on what the evaluated images did for the model: how many it was trained on, and that a
    validation split chose its epoch and calibration (both make the figure optimistic); the accuracy's 95 %
    interval when there are fewer than a thousand images is added by the caller."""
    out: list[str] = []
    ds, cfg = ckpt.dataset or {}, ckpt.train_config or {}
    root = ds.get("path")
    train_files: set[str] = set()
    val_files: set[str] = set()
    if isinstance(root, str) and cfg.get("dataset") == "folder" and Path(root).is_dir():
        try:
            split = scan_folder(root, val_split=float(cfg.get("val_split", 0.2)), seed=int(cfg.get("seed", 0)))
            train_files = {str(Path(p).resolve()) for p, _ in split.train}
            val_files = {str(Path(p).resolve()) for p, _ in split.val}
        except (DatasetError, OSError, ValueError, TypeError):
            pass
    evaluated = [str(Path(p).resolve()) for p in paths if p]
    trained = sum(p in train_files for p in evaluated)
    chose = sum(p in val_files for p in evaluated)
    if trained:
        out.append(f"The model was trained on {trained:,} of these {len(evaluated):,} images: the figure is "
                   "optimistic, not a result. Evaluate on images it never saw.")
    if data == "validation" or chose:
        what = "These are" if data == "validation" or chose == len(evaluated) else f"{chose:,} of these are"
        out.append(f"{what} the validation split of its training run, which chose the best epoch and fitted the "
                   "calibration: the figure is optimistic.")
    return out


def _tta_batches(predictor: Predictor, paths: list[Path], batch_size: int, cancelled):
    """Like predict_paths, but each image's probabilities are the mean of the image and its mirror image."""
    from ..inference.prediction import Prediction

    for batch in predictor.batches(paths, batch_size=batch_size, cancelled=cancelled):
        if cancelled():
            return
        probs = iter([])
        if batch.decoded:
            x = batch.pixels
            probs = iter((predictor.probabilities(x) + predictor.probabilities(x[:, :, ::-1])) / 2)
        out = []
        for i, path in enumerate(batch.paths):
            if i in batch.errors:
                out.append(Prediction(path=path, error=batch.errors[i]))
                continue
            p = next(probs)
            order = np.argsort(-p, kind="stable")
            top = [(predictor.class_names[j], float(p[j])) for j in order]
            out.append(Prediction(path=path, label=top[0][0], confidence=top[0][1], top_k=top,
                                  class_index=int(order[0])))
        yield out


def _evaluate_files(predictor: Predictor, files: LabelledFiles, *, batch_size: int, progress: Progress,
                    tta: bool = False):
    c = len(predictor.class_names)
    index = {name: i for i, name in enumerate(predictor.class_names)}
    probs, labels, paths, failed = [], [], [], []
    label_of = dict(zip(map(str, files.paths), files.labels))
    done = 0
    batches = _tta_batches(predictor, files.paths, batch_size, progress.cancelled) if tta else \
        predictor.predict_paths(files.paths, top_k=c, batch_size=batch_size, cancelled=progress.cancelled)
    for batch in batches:
        for pred in batch:
            done += 1
            if not pred.ok:
                failed.append({"path": pred.path, "error": pred.error})
                continue
            row = np.zeros(c, dtype=np.float32)
            for name, p in pred.top_k:
                row[index[name]] = p
            probs.append(row)
            labels.append(label_of[pred.path])
            paths.append(pred.path)
        progress.update("Evaluating", done, len(files.paths))
    progress.check()
    return (np.stack(probs) if probs else np.empty((0, c), np.float32)), np.asarray(labels, dtype=np.int64), \
        paths, failed


def _evaluate_arrays(predictor: Predictor, images: np.ndarray, labels: np.ndarray, *, batch_size: int,
                     progress: Progress, tta: bool = False):
    """uint8 images N x H x W x 3 (CIFAR-10's test set) through the model's eval preprocessing."""
    from PIL import Image

    from ..models.preprocess import resize_and_crop

    pre = predictor.preprocess
    out = []
    for start in range(0, len(images), batch_size):
        progress.check()
        x = images[start:start + batch_size]
        if x.shape[1] != pre.input_size:  # the eval preset, as for files: shorter side to resize, center crop
            x = np.stack([np.asarray(resize_and_crop(Image.fromarray(img), pre)) for img in x])
        probs = predictor.probabilities(x)
        out.append((probs + predictor.probabilities(x[:, :, ::-1])) / 2 if tta else probs)
        progress.update("Evaluating", min(start + batch_size, len(images)), len(images))
    paths = [f"test image {i}" for i in range(len(images))]
    return np.concatenate(out), np.asarray(labels, dtype=np.int64), paths, []


def evaluate(model: os.PathLike | str, data: str, *, device: str = "auto", batch_size: int = 64,
             tta: bool = False, progress: Progress = NO_PROGRESS, registry=None, engine: str = "auto",
             precision: str = "auto") -> Evaluation:
    """Evaluate the model `model` (registry name or file) on `data`: a folder, "cifar10" (the test set, looked
    for where training looks), or "validation" (the split of the run that made the model)."""
    from ..engines.choose import open_predictor
    from ..models.checkpoint import read_checkpoint
    from ..models.registry import Registry

    registry = registry or Registry()
    path = registry.resolve(model)
    ckpt = read_checkpoint(path)
    files = run_validation_files(ckpt) if data == "validation" else None
    predictor = open_predictor(ckpt, engine=engine, device=device, precision=precision, path=path)
    if data == "cifar10":
        from ..data.cifar import load_cifar10, locate_cifar10

        _, test, names = load_cifar10(locate_cifar10(None, progress=progress))
        index = {n: i for i, n in enumerate(predictor.class_names)}
        if [n for n in names if n not in index]:
            raise DatasetError(f"the model's classes ({', '.join(predictor.class_names[:10])}) are not CIFAR-10's")
        labels = np.asarray([index[names[i]] for i in test.labels.tolist()], dtype=np.int64)
        pixels = np.ascontiguousarray(test.images.permute(0, 2, 3, 1).numpy())
        probs, true, paths, failed = _evaluate_arrays(predictor, pixels, labels, batch_size=batch_size,
                                                      progress=progress, tta=tta)
        unknown, described = {}, "CIFAR-10 test set (10,000 images)"
    else:
        files = files or folder_files(data, predictor.class_names)
        probs, true, paths, failed = _evaluate_files(predictor, files, batch_size=batch_size, progress=progress,
                                                     tta=tta)
        unknown, described = files.unknown_classes, files.description
    f = figures(probs, true, predictor.class_names)
    conf, pred = (probs.max(1), probs.argmax(1)) if len(true) else (np.empty(0), np.empty(0, dtype=np.int64))
    wrong = sorted(np.flatnonzero(pred != true).tolist(), key=lambda i: -float(conf[i]))
    rows = [{"path": paths[i], "true": predictor.class_names[int(true[i])],
             "predicted": predictor.class_names[int(pred[i])], "confidence": float(conf[i])} for i in range(len(true))]
    misclassified = [rows[i] for i in wrong[:MAX_MISCLASSIFIED]]
    caveats = training_overlap(ckpt, paths, data) if data != "cifar10" else []
    if 0 < f.n < INTERVAL_BELOW:
        caveats.append(f"Accuracy {accuracy_with_interval(round(f.accuracy * f.n), f.n)} (95 % interval).")
    return Evaluation(figures=f, model=str(path.stem), data=described, tta=tta, misclassified=misclassified,
                      failed=failed, unknown_classes=unknown, calibrated=predictor.calibrated, rows=rows,
                      model_path=str(path), caveats=caveats,
                      curves=class_curves(probs, true, predictor.class_names),
                      operating_points=dict(ckpt.operating_points or {}))


def write_rows_csv(ev: Evaluation, out: os.PathLike | str) -> Path:
    """One row per image (path, true, predicted, confidence, correct), spreadsheet-safe; written atomically.
    Refused (OutputError) where it would replace the model or land among the app's models and runs."""
    import csv
    import io

    from ..atomic import atomic_write_bytes
    from ..inference.prediction import csv_cell
    from ..paths import check_output

    check_output(out, model=ev.model_path)

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "true", "predicted", "confidence", "correct"])
    for row in ev.rows:
        writer.writerow([csv_cell(row["path"]), csv_cell(row["true"]), csv_cell(row["predicted"]),
                         f"{row['confidence']:.6f}", int(row["true"] == row["predicted"])])
    return atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
