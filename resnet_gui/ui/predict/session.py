"""The Predict tab's work, without widgets: load the chosen model, classify one image or a whole folder.

PredictSession owns three task slots (model loading, single image, folder), so a newer request
always supersedes an older one of the same kind and a superseded result never arrives. Requests made
before the window is up or the model has loaded wait (the latest one wins) and run once it is; when the model
failed to load, a new request tries again and reports the failure instead of waiting forever.
Results are typed values (LoadedModel, ImageResult, FolderRows, FolderDone), never tensors.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from resnet_gui import edition, resources

from ..common.failures import Failure
from ..common.qimages import pil_to_qimage
from ..common.workers import TaskSlot
from .model_cache import get_predictor, using

TOP_K = 5
SAMPLES_DIR = "samples"
FOLDER_BATCH = 16
THUMBNAIL_PX = 48


@dataclass(frozen=True)
class LoadedModel:
    name: str
    path: str
    arch: str
    num_classes: int
    device: str
    class_names: tuple[str, ...] = ()
    calibrated: bool = False        # its confidences are temperature-scaled
    has_familiarity: bool = False   # it can tell an image unlike its training data
    can_flag: str = "cannot flag unfamiliar images"  # how well, as measured when fitted (core/inference/outliers.py)
    familiarity_threshold: float | None = None  # below this familiarity an image counts as unfamiliar
    samples: tuple[str, ...] = ()   # images to try: bundled digits for the demo, else validation images
    no_samples_reason: str = ""     # why there are none (a sentence for the user)


@dataclass(frozen=True)
class ImageResult:
    name: str                       # what the view calls the image (a path, "pasted image", ...)
    model_name: str
    prediction: Any = None          # core.predict.Prediction
    preview: QImage | None = None
    size: tuple[int, int] = (0, 0)
    error: str | None = None        # the file could not be read (the model is fine)


@dataclass(frozen=True)
class FolderRows:
    rows: tuple = ()                # (Prediction, QImage thumbnail or None), in file order
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class FolderLabels:
    labels: dict                    # path -> true class, for files in folders named after the model's classes
    unknown: dict                   # other folders with images -> how many


@dataclass(frozen=True)
class FolderDone:
    folder: str
    model_name: str
    total: int
    done: int
    cancelled: bool = False


def bundled_samples() -> list[Path]:
    """Every bundled sample, in the order Try a sample shows them: one digit of each class in turn, with the hard
    digit after the first three and a not-a-digit image after every few more (so a newcomer meets "not sure" and
    "unfamiliar" early, and nothing repeats before every sample has come)."""
    folder = resources.path(SAMPLES_DIR)
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    digits = [f for f in files if f.name.startswith("digit_")]
    others = [f for f in files if f not in digits]
    by_class: dict[str, list[Path]] = {}
    for f in digits:
        by_class.setdefault(f.name.split("_")[1], []).append(f)
    turns = [group[i] for i in range(max(map(len, by_class.values()), default=0))
             for group in by_class.values() if i < len(group)]
    order = turns[:3]
    for i, other in enumerate(others):
        order += [other] + turns[3 + 2 * i:5 + 2 * i]
    return order + turns[3 + 2 * len(others):]


def model_samples(meta: dict) -> tuple[list[str], str]:
    """Images to try with this model: the bundled digits for the demo model (under any name), else the
    validation images it was trained with when they still exist. Returns (files, reason when none)."""
    from resnet_gui.core.data.folders import scan_folder
    from resnet_gui.core.errors import ResnetGuiError
    from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
    from resnet_gui.core.models.demo import demo_checkpoint_path

    demo = demo_checkpoint_path()
    if demo.is_file():
        demo_meta = read_checkpoint_metadata(demo)
        if (meta.get("created"), meta.get("class_names")) == (demo_meta.get("created"), demo_meta.get("class_names")):
            return [str(p) for p in bundled_samples()], ""
    dataset = meta.get("dataset") or {}
    config = meta.get("train_config") or {}
    folder = dataset.get("path")
    if not folder or config.get("dataset") != "folder":
        return [], "There are no samples for this model: it does not say which image folder it was validated on."
    try:
        split = scan_folder(folder, val_split=float(config.get("val_split", 0.2)), seed=int(config.get("seed", 0)))
    except (ResnetGuiError, OSError, ValueError, TypeError):
        return [], f"There are no samples for this model: its validation images in {folder} are no longer there."
    files = [str(path) for path, _ in split.val if path.is_file()]
    if not files:
        return [], f"There are no samples for this model: its validation images in {folder} are no longer there."
    return files, ""


# ---- worker functions (run in Task threads) ------------------------------------------------------
def load_model_task(report, stop, name: str, model_path: str, device: str) -> LoadedModel:
    from resnet_gui.core.inference.outliers import can_flag

    predictor = get_predictor(model_path, device)
    facts = predictor.facts
    samples, reason = model_samples(facts.metadata)  # what the predictor read: the file is not opened again
    fam = predictor.familiarity
    return LoadedModel(name=name, path=model_path, arch=facts.arch, num_classes=len(predictor.class_names),
                       device=str(predictor.device), class_names=tuple(predictor.class_names),
                       calibrated=predictor.calibrated, has_familiarity=fam is not None,
                       can_flag=can_flag({"measured": fam.measured} if fam is not None else None),
                       familiarity_threshold=fam.threshold if fam is not None else None,
                       samples=tuple(samples), no_samples_reason=reason)


def predict_image_task(report, stop, model_name: str, model_path: str, source, name: str,
                       device: str) -> ImageResult:
    from resnet_gui.core.errors import ImageLoadError
    from resnet_gui.core.images import load_image

    try:
        image = load_image(source, name=name)
    except ImageLoadError as exc:
        return ImageResult(name=name, model_name=model_name, error=str(exc))
    predictor = get_predictor(model_path, device)
    with using(predictor):  # a folder may be running on the same model: classified between two of its batches
        prediction = predictor.predict_image(image, top_k=TOP_K, path=name)
    return ImageResult(name=name, model_name=model_name, prediction=prediction,
                       preview=pil_to_qimage(image, 1600), size=image.size)


def folder_labels(folder: str, class_names: list[str]) -> FolderLabels | None:
    """The true classes of a folder laid out as folder/<class>/… (core.evaluate.folder_files), or None."""
    from resnet_gui.core.errors import ResnetGuiError
    from resnet_gui.core.evaluation.evaluate import folder_files

    try:
        files = folder_files(folder, class_names)
    except (ResnetGuiError, OSError):
        return None
    return FolderLabels({str(p): class_names[i] for p, i in zip(files.paths, files.labels)},
                        dict(files.unknown_classes))


def predict_folder_task(report, stop, model_path: str, folder: str, device: str) -> int:
    """Report FolderLabels when the folder is laid out by class, then FolderRows (throttled to about 20 a
    second); return how many files were classified."""
    from contextlib import closing

    from resnet_gui.core.images import list_images
    from resnet_gui.core.progress import Throttle

    files = list_images([folder])
    report(FolderRows(total=len(files)))
    predictor = get_predictor(model_path, device)
    labels = folder_labels(folder, predictor.class_names)
    if labels is not None:
        report(labels)
    throttle = Throttle()
    rows: list = []
    done = 0
    # predict_paths' steps, with the model held only for each batch's forward pass (images decode meanwhile)
    with closing(predictor.batches(files, batch_size=FOLDER_BATCH, cancelled=stop.is_set,
                                   thumbnail=THUMBNAIL_PX)) as decoded:
        for batch in _predicted(predictor, decoded, stop):
            for pred in batch:
                thumb, pred.thumbnail = pred.thumbnail, None  # the GUI gets a QImage, not a PIL image
                rows.append((pred, pil_to_qimage(thumb) if thumb is not None else None))
            done += len(batch)
            if throttle.ready(force=done >= len(files)):
                report(FolderRows(tuple(rows), done, len(files)))
                rows = []
    if rows:
        report(FolderRows(tuple(rows), done, len(files)))
    return done


def _predicted(predictor, decoded, stop):
    for batch in decoded:
        if stop.is_set():
            return
        with using(predictor):  # released before the batch is handed on
            predictions = predictor.predict_batch(batch, top_k=TOP_K)
        yield predictions


# ---- the session -----------------------------------------------------------------------------------
@dataclass
class _Request:
    kind: str                       # "image" or "folder"
    start: Callable[[], None]
    fail: Callable[[Failure], None]


class PredictSession(QObject):
    waiting = Signal(str, str)          # (kind, message): a request waits for PyTorch or the model
    model_started = Signal(str)         # model name
    model_done = Signal(object)         # LoadedModel
    model_failed = Signal(str, object)  # (model name, Failure)
    image_started = Signal(str)         # name
    image_done = Signal(object)         # ImageResult
    image_failed = Signal(str, object)  # (name, Failure): the model could not run
    folder_started = Signal(str, str)   # (folder, model name)
    folder_progress = Signal(object)    # FolderRows
    folder_done = Signal(object)        # FolderDone
    folder_failed = Signal(object)      # Failure
    folder_labels = Signal(object)      # FolderLabels: the folder is laid out by class
    explain_done = Signal(object)       # heatmap.CamResult
    explain_failed = Signal(str, object)  # (name, Failure)
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ready = False
        self.device = "auto"
        self.model_name: str | None = None
        self.model_path: str | None = None
        self.model: LoadedModel | None = None
        self.model_error: Failure | None = None
        self._pending: dict[str, _Request] = {}   # kind -> the latest request of that kind waiting to run
        self._folder: tuple[str, str] | None = None  # (folder, model name) of the run in progress
        self._folder_counts = (0, 0)                  # (done, total) of that run
        self._model_slot = TaskSlot("load-model", self)
        self._image_slot = TaskSlot("predict-image", self)
        self._folder_slot = TaskSlot("predict-folder", self)
        self._explain_slot = TaskSlot("explain", self)
        for slot in (self._model_slot, self._image_slot, self._folder_slot, self._explain_slot):
            slot.busy_changed.connect(lambda _busy: self.busy_changed.emit(self.busy()))

    # ---- state ------------------------------------------------------------------------------------
    def busy(self) -> bool:
        return self._model_slot.busy() or self._image_slot.busy() or self._folder_slot.busy() \
            or self._explain_slot.busy()

    def has_pending(self) -> bool:
        return bool(self._pending)

    def set_ready(self, device: str) -> None:
        """The window is up: models can load (the engine is chosen per model, core/engines/choose.py)."""
        self.ready = True
        self.device = device
        if self.model_path is not None:
            self._load()
        elif self._pending:
            self._run_pending()

    def set_model(self, name: str | None, path: str | None) -> None:
        if (name, path) == (self.model_name, self.model_path):
            return
        self.model_name, self.model_path = name, path
        self.model, self.model_error = None, None
        self._image_slot.cancel()  # a result of the previous model must not appear under this one
        self._explain_slot.cancel()
        if path is None:
            self._model_slot.cancel()
            return
        self._load()

    def _load(self) -> None:
        if not self.ready or self.model_path is None:
            return
        self.model, self.model_error = None, None
        self.model_started.emit(self.model_name or "")
        self._model_slot.start(load_model_task, self.model_name, self.model_path, self.device,
                               on_done=self._loaded, on_failed=self._load_failed)

    def _loaded(self, model: LoadedModel) -> None:
        self.model = model
        self.model_done.emit(model)
        self._run_pending()

    def _load_failed(self, failure: Failure) -> None:
        self.model_error = failure
        pending, self._pending = self._pending, {}
        self.model_failed.emit(self.model_name or "", failure)  # the single-image view shows it
        if "folder" in pending:
            pending["folder"].fail(Failure(f"The model “{self.model_name}” could not be loaded: {failure.message}",
                                           failure.kind, failure.remedy))

    def _run_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for request in pending.values():  # a waiting folder and a waiting image both run
            self._submit(request)

    # ---- requests ---------------------------------------------------------------------------------
    def _submit(self, request: _Request) -> None:
        if not self.ready:
            self._pending[request.kind] = request
            self.waiting.emit(request.kind, "Starting up…")
            return
        if self.model_path is None:
            self._pending.pop(request.kind, None)
            request.fail(Failure(f"No model is available. {edition.train_one()} or import one in the Models tab.",
                                 "no model"))
            return
        if self.model is None:
            self._pending[request.kind] = request
            if self.model_error is not None or not self._model_slot.busy():
                self._load()  # it failed before: try again rather than wait forever
            self.waiting.emit(request.kind, "Loading the model…")
            return
        request.start()

    def classify_image(self, source, name: str) -> None:
        def start():
            self.image_started.emit(name)
            self._explain_slot.cancel()  # a map of the image before must not arrive over this one
            self._image_slot.start(predict_image_task, self.model_name, self.model_path, source, name, self.device,
                                   on_done=self.image_done.emit,
                                   on_failed=lambda failure: self.image_failed.emit(name, failure))

        self._submit(_Request("image", start, lambda failure: self.image_failed.emit(name, failure)))

    def classify_folder(self, folder: str) -> None:
        def start():
            self._finish_folder(cancelled=True)  # a run in progress is superseded
            model_name = self.model_name or ""
            self._folder, self._folder_counts = (folder, model_name), (0, 0)
            self.folder_started.emit(folder, model_name)
            self._folder_slot.start(predict_folder_task, self.model_path, folder, self.device,
                                    on_progress=self._folder_progress, on_done=lambda _n: self._finish_folder(False),
                                    on_failed=self._folder_failed)

        self._submit(_Request("folder", start, self.folder_failed.emit))

    def cancel_folder(self) -> None:
        self._pending.pop("folder", None)
        self._finish_folder(cancelled=True)

    def _folder_progress(self, value) -> None:
        if isinstance(value, FolderLabels):
            self.folder_labels.emit(value)
            return
        self._folder_counts = (value.done, value.total)
        self.folder_progress.emit(value)

    def explain(self, source, name: str, class_index: int | None) -> None:
        """The Grad-CAM map of `class_index` (None: the top class) over the image, in a worker."""
        if not self.ready or self.model_path is None:
            return
        from .heatmap import explain_task

        self._explain_slot.start(explain_task, self.model_path, source, name, self.device, class_index,
                                 on_done=self.explain_done.emit,
                                 on_failed=lambda failure: self.explain_failed.emit(name, failure))

    def cancel_explain(self) -> None:
        self._explain_slot.cancel()

    def _finish_folder(self, cancelled: bool) -> None:
        run, self._folder = self._folder, None
        if cancelled:
            self._folder_slot.cancel()
        if run is not None:
            done, total = self._folder_counts
            self.folder_done.emit(FolderDone(folder=run[0], model_name=run[1], total=total, done=done,
                                             cancelled=cancelled))

    def _folder_failed(self, failure: Failure) -> None:
        self._folder = None
        self.folder_failed.emit(failure)
