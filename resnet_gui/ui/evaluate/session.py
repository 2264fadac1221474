"""The Evaluate tab's work, without widgets: evaluate a model on labelled data, and load the thumbnails of
the images behind one cell of the confusion matrix.

Both are task slots, `evaluation` and `gallery` (a newer evaluation or gallery supersedes the older one,
whose result never arrives). Results are plain values: core.evaluate.Evaluation (floats, lists and dicts)
and thumbnails as QImages made in the worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from resnet_gui.text import plural

from ..common.qimages import pil_to_qimage
from ..common.workers import TaskSlot

DATA_WORDS = {"cifar10": "the CIFAR-10 test set", "validation": "its validation split"}
THUMBNAIL_PX = 96
MAX_GALLERY = 400            # images shown for one cell; the count says how many there are
GALLERY_CHUNK = 24
MAX_LISTED = 5               # folders left out, or files unreadable, named in the notes


@dataclass(frozen=True)
class EvalRequest:
    model_name: str
    model_path: str
    data: str                  # a folder, "cifar10" or "validation"
    tta: bool = False

    def data_words(self) -> str:
        return DATA_WORDS.get(self.data, self.data)


@dataclass(frozen=True)
class EvalOutcome:
    request: EvalRequest
    evaluation: Any            # core.evaluate.Evaluation
    verdicts: tuple[str, ...] = ()   # what is wrong with the model, in sentences (core.metrics.verdicts)

    def notes(self) -> list[str]:
        """What the evaluation left out or could not tell, in sentences: folders that are not classes of the
        model, files that could not be read, raw (uncalibrated) confidences."""
        ev, notes = self.evaluation, []
        if ev.unknown_classes:
            listed = ", ".join(f"{k} ({v:,})" for k, v in list(ev.unknown_classes.items())[:MAX_LISTED])
            notes.append(f"Folders that are not classes of this model were left out: {listed}.")
        if ev.failed:
            listed = "\n".join(str(e.get("error") or e.get("path")) for e in ev.failed[:MAX_LISTED])
            notes.append(f"{plural(len(ev.failed), 'file')} could not be read:\n{listed}")
        if not ev.calibrated:
            notes.append("This model is uncalibrated: its confidences are the network's raw ones.")
        return notes


@dataclass(frozen=True)
class Thumbnails:
    key: tuple                 # what the gallery asked for (a cell, or "mistakes")
    items: tuple               # ((row dict, QImage or None), ...)


def is_file_row(path: str) -> bool:
    """Rows of folder evaluations are files; CIFAR-10 test images are not ("test image 12")."""
    return bool(path) and (Path(path).is_absolute() or "/" in path or "\\" in path)


# ---- worker functions ------------------------------------------------------------------------------
def evaluate_task(report, stop, request: EvalRequest, device: str):
    from resnet_gui.core.evaluation.evaluate import evaluate
    from resnet_gui.core.evaluation.metrics import verdicts
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    evaluation = evaluate(request.model_path, request.data, device=device, tta=request.tta, progress=progress)
    words = verdicts(evaluation.figures, accuracy_words="validation accuracy" if request.data == "validation"
                     else "accuracy") if evaluation.figures.n else []
    return EvalOutcome(request, evaluation, tuple(evaluation.caveats) + tuple(words))


def thumbnails_task(report, stop, key: tuple, rows: list[dict]) -> int:
    """Report Thumbnails in chunks (the gallery fills as they come); a file that cannot be read gets None."""
    from resnet_gui.core.errors import Cancelled, ImageLoadError
    from resnet_gui.core.images import load_image

    chunk: list = []
    for i, row in enumerate(rows):
        if stop.is_set():
            raise Cancelled()
        image = None
        if is_file_row(row["path"]):
            try:
                image = pil_to_qimage(load_image(row["path"], name=row["path"], min_side=THUMBNAIL_PX), THUMBNAIL_PX)
            except (ImageLoadError, OSError, ValueError):
                image = None
        chunk.append((row, image))
        if len(chunk) >= GALLERY_CHUNK or i == len(rows) - 1:
            report(Thumbnails(key, tuple(chunk)))
            chunk = []
    return len(rows)


# ---- the session -----------------------------------------------------------------------------------
class EvaluateSession(QObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.ready = False
        self.device = "auto"
        self.request: EvalRequest | None = None
        self.evaluation = TaskSlot("evaluate", self)         # progress: (what, done, total); done: EvalOutcome
        self.gallery = TaskSlot("evaluate-gallery", self)    # progress: Thumbnails, a chunk at a time

    def set_ready(self, device: str) -> None:
        self.ready = True
        self.device = device

    def busy(self) -> bool:
        return self.evaluation.busy()

    def evaluate(self, request: EvalRequest) -> bool:
        if not self.ready:
            return False
        self.request = request
        self.gallery.cancel()
        self.evaluation.start(evaluate_task, request, self.device)
        return True

    def cancel(self) -> None:
        self.evaluation.cancel()

    def load_thumbnails(self, key: tuple, rows: list[dict]) -> None:
        self.gallery.start(thumbnails_task, key, rows[:MAX_GALLERY])
