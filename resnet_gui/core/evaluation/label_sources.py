"""Where the out-of-sample probabilities of the label check come from, and the check itself.

Three routes, chosen by what the user gives (measured in benchmarks/bench_label_issues.py, README "Evaluation
and dataset health"):

* no model: 5-fold logistic regression on 8 x 8 colour thumbnails of the images. Seconds for 2,000 images on
  2 cores, out-of-sample by construction; it sees pixel layout only, so it is strong on digits, scans and
  icons and weak on photographs (say so; give a model there).
* a model whose classes include the folder's: the model's own answers, through the inference engine
  (core.engines.choose.open_predictor: ONNX Runtime on the CPU). Out-of-sample only for images it did not
  train on: when the model was trained on this folder, the images of its run's training split are left out
  (the run's split is recomputed from its saved settings) and only its held-out images are judged.
* any other model: 5-fold logistic regression on its penultimate features (the input of its last layer).

Every use of the model goes through `_model_outputs`, the one seam to the inference engine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from resnet_gui.text import plural

from ..data.folders import scan_folder
from ..errors import DatasetError
from ..progress import NO_PROGRESS, Progress
from .label_issues import FOLDS, LabelReport, cross_validated_probabilities, rank_issues

THUMB = 8                  # the no-model route's thumbnails: 8 x 8 RGB, 192 numbers per image
MIN_PER_CLASS = 2          # a class with fewer images cannot be checked (nothing to compare it with)
BATCH = 64


def labelled_files(folder: os.PathLike | str) -> tuple[list[str], np.ndarray, list[str]]:
    """(paths, labels, class names) of every image in the folder's class folders (train, val and test)."""
    split = scan_folder(folder, val_split=0.5)
    items = sorted(split.train + split.val + split.test)
    return [str(p) for p, _ in items], np.array([label for _, label in items], np.int64), list(split.class_names)


def _thumbnails(paths: list[str], progress: Progress) -> tuple[np.ndarray, list[int], list[str]]:
    from PIL import Image

    from ..data.arrays import decode_all

    def small(image):
        return np.asarray(image.resize((THUMB, THUMB), Image.Resampling.BILINEAR), np.float32).ravel()

    rows, failures = decode_all([(Path(p), 0) for p in paths], small, progress, "Reading images")
    ok = [i for i, r in enumerate(rows) if r is not None]
    return (np.stack([rows[i] for i in ok]) if ok else np.zeros((0, THUMB * THUMB * 3), np.float32)), ok, failures


def _model_outputs(predictor, paths: list[str], progress: Progress):
    """The seam to the inference engine: (calibrated probabilities N x C, penultimate features N x D, indices of
    the paths that decoded, failures), one pass of the engine per batch."""
    from contextlib import closing

    from ..inference.calibration import softmax

    probs, features, ok, failures = [], [], [], []
    done = 0
    with closing(predictor.batches(paths, batch_size=BATCH, cancelled=progress.cancelled)) as batches:
        for batch in batches:
            progress.check()
            if batch.decoded:
                out = predictor.outputs(batch.pixels, ("logits", "features"))
                probs.append(softmax(out["logits"], predictor.temperature).astype(np.float64))
                features.append(np.asarray(out["features"], np.float64))
            ok.extend(done + i for i in batch.decoded)
            failures.extend(batch.errors.values())
            done += len(batch.paths)
            progress.update("Reading images", done, len(paths))
    progress.check()
    if not ok:
        return np.zeros((0, len(predictor.class_names))), np.zeros((0, 1)), ok, failures
    return np.concatenate(probs), np.concatenate(features), ok, failures


def _trained_on(ckpt, folder: Path) -> set[str] | None:
    """The files of `folder` the model trained on (its run's training split, recomputed from the run's saved
    settings), or None when the model was not trained on this folder."""
    data, cfg = (ckpt.dataset or {}).get("path"), ckpt.train_config or {}
    try:
        if not isinstance(data, str) or Path(data).expanduser().resolve() != folder.resolve():
            return None
        split = scan_folder(folder, val_split=float(cfg.get("val_split", 0.2)), seed=int(cfg.get("seed", 0)),
                            exclude=cfg.get("exclude") if isinstance(cfg.get("exclude"), list) else None,
                            relabel=cfg.get("relabel") if isinstance(cfg.get("relabel"), dict) else None)
    except (OSError, ValueError, TypeError, DatasetError):
        return None
    return {str(p) for p, _ in split.train}


def _enough(labels: np.ndarray, classes: int, folds: int, folder: Path, why: str) -> None:
    checkable = np.bincount(labels, minlength=classes)
    if (checkable >= MIN_PER_CLASS).sum() < 2 or len(labels) < 2 * folds:
        raise DatasetError(f"{folder}: {plural(len(labels), 'image')} in usable classes are too few to check "
                           f"labels {why}; give a model trained on other images of these classes (--model NAME, "
                           "or the Evaluate tab)")


def check_labels(folder: os.PathLike | str, *, model: str | None = None, registry=None, folds: int = FOLDS,
                 seed: int = 0, engine: str = "auto", device: str = "auto",
                 progress: Progress = NO_PROGRESS) -> LabelReport:
    """The images of `folder` whose given class is doubted, best first (see the module docstring)."""
    folder = Path(folder).expanduser()
    paths, labels, names = labelled_files(folder)
    warnings = []
    counts = np.bincount(labels, minlength=len(names))
    small = [n for n, c in zip(names, counts) if c < MIN_PER_CLASS]
    if small:
        warnings.append(f"{'Classes' if len(small) > 1 else 'Class'} {', '.join(small)} "
                        f"{'have' if len(small) > 1 else 'has'} a single image: "
                        f"{'their labels' if len(small) > 1 else 'its label'} cannot be checked (nothing to compare "
                        "with); add images.")
    keep = np.flatnonzero(counts[labels] >= MIN_PER_CLASS)
    paths, labels = [paths[i] for i in keep], labels[keep]
    if model is not None:
        from ..engines.choose import open_predictor
        from ..models.checkpoint import read_checkpoint
        from ..models.registry import Registry

        model_path = (registry or Registry()).resolve(model)
        ckpt = read_checkpoint(model_path)
        trained = _trained_on(ckpt, folder)
        if trained:
            held = [i for i, p in enumerate(paths) if p not in trained]
            warnings.append(f"{model_path.stem} was trained on this folder: the "
                            f"{plural(len(paths) - len(held), 'image')} of its training split are not judged (it "
                            "learnt their labels as given, mistakes included); check them without a model, or with "
                            "a model trained on other images.")
            paths, labels = [paths[i] for i in held], labels[held]
        predictor = open_predictor(ckpt, engine=engine, device=device, path=model_path)
        probs, features, ok, failures = _model_outputs(predictor, paths, progress)
        warnings += [f"Not checked: {f}" for f in failures]
        paths, labels = [paths[i] for i in ok], labels[ok]
        index = {n: i for i, n in enumerate(predictor.class_names)}
        if all(n in index for n in names):
            if not len(labels):
                raise DatasetError(f"{folder}: no image left to judge with {model_path.stem} (it trained on all "
                                   "of them); check without a model")
            columns = [index[n] for n in names]
            own = probs[:, columns] / np.maximum(probs[:, columns].sum(1, keepdims=True), 1e-12)
            issues, estimated = rank_issues(own, labels, paths, names)
            method = f"the answers of {model_path.stem}" + (" on the images it did not train on" if trained else "")
            return LabelReport(method, len(paths), issues, warnings, estimated)
        method = f"{folds}-fold logistic regression on the features of {model_path.stem}"
    else:
        features, ok, failures = _thumbnails(paths, progress)
        warnings += [f"Not checked: {f}" for f in failures]
        paths, labels = [paths[i] for i in ok], labels[ok]
        method = (f"{folds}-fold logistic regression on {THUMB} x {THUMB} thumbnails (no model given: it sees the "
                  "layout of the pixels, enough for digits or scans, not for photographs)")
    _enough(labels, len(names), folds, folder, f"{folds} ways (each fold must learn from the others)")
    probs, _ = cross_validated_probabilities(features, labels, len(names), folds=folds, seed=seed,
                                             cancelled=progress.cancelled)
    issues, estimated = rank_issues(probs, labels, paths, names)
    return LabelReport(method, len(paths), issues, warnings, estimated)
