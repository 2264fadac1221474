"""Predict tab: pick a model and an image (button, drop, paste, sample) or a folder; see the class."""
from __future__ import annotations

import os
import random
import threading
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui import resources

from .tasks import Task
from .widgets import Banner, ImagePreview, TopKBars, big_font, pil_to_qimage

TOP_K = 5
SAMPLES_DIR = "samples"
_cache_lock = threading.Lock()
_predictors: dict[tuple[str, float, str], object] = {}


def get_predictor(model_path: str, device: str = "auto"):
    """A Predictor for the file, cached by (path, mtime, device); built in the calling (worker) thread."""
    from resnet_gui.core.predict import Predictor

    key = (model_path, os.path.getmtime(model_path), device)
    with _cache_lock:
        cached = _predictors.get(key)
    if cached is None:
        cached = Predictor.from_file(model_path, device=device)
        with _cache_lock:
            _predictors.clear()  # keep one model in memory
            _predictors[key] = cached
    return cached


# ---- worker functions (run in Task threads) ------------------------------------------------------
def load_model_task(report, stop, model_path: str, device: str) -> dict:
    p = get_predictor(model_path, device)
    return {"path": model_path, "arch": p.checkpoint.arch, "classes": len(p.class_names),
            "device": str(p.device)}


def predict_image_task(report, stop, model_path: str, source, name: str, device: str) -> dict:
    from resnet_gui.core.errors import ImageLoadError
    from resnet_gui.core.images import load_image

    try:
        image = load_image(source, name=name)
    except ImageLoadError as exc:
        return {"name": name, "error": str(exc)}
    predictor = get_predictor(model_path, device)
    pred = predictor.predict_image(image, top_k=TOP_K, path=name)
    return {"name": name, "prediction": pred, "preview": pil_to_qimage(image, 1600), "size": image.size}


def predict_folder_task(report, stop, model_path: str, folder: str, device: str) -> dict:
    from resnet_gui.core.images import list_images

    files = list_images([folder])
    report({"total": len(files)})
    predictor = get_predictor(model_path, device)
    done = 0
    for batch in predictor.predict_paths(files, top_k=TOP_K, batch_size=16, cancelled=stop.is_set, thumbnail=48):
        rows = []
        for pred in batch:
            thumb, pred.thumbnail = pred.thumbnail, None  # the GUI gets a QImage, not a PIL image
            rows.append((pred, pil_to_qimage(thumb) if thumb is not None else None))
        done += len(rows)
        report({"rows": rows, "done": done, "total": len(files)})
    return {"total": len(files), "done": done, "cancelled": stop.is_set()}


# ---- the widget ------------------------------------------------------------------------------------
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # what the table sorts by (numbers for confidence)


class PredictTab(QWidget):
    status_message = Signal(str)
    active_model_changed = Signal(str)

    def __init__(self, registry, settings, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.ready = False  # torch imported
        self.device = "auto"
        self.model_path: str | None = None
        self.model_loaded = False
        self.current_source = None  # (source, name) of the image shown
        self._task: Task | None = None
        self._model_task: Task | None = None
        self._pending = None  # what to run once the model is loaded
        self.results: list = []
        self._folder: str | None = None
        self._samples: list[Path] | None = None
        self._build()
        registry.changed.connect(self._registry_changed)
        self.setAcceptDrops(True)

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(12, 12, 12, 12)
        root.setSpacing(10)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.setMinimumWidth(240)
        self.model_combo.setPlaceholderText("Loading models…")
        self.model_combo.setToolTip("Models from the registry (Models tab)")
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        bar.addWidget(self.model_combo, 1)
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Open an image file (Ctrl+O)")
        self.open_button.clicked.connect(self.open_image_dialog)
        self.folder_button = QPushButton("Open folder…")
        self.folder_button.setToolTip("Classify every image in a folder (Ctrl+Shift+O)")
        self.folder_button.clicked.connect(self.open_folder_dialog)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Classify the image on the clipboard (Ctrl+V)")
        self.paste_button.clicked.connect(self.paste)
        self.sample_button = QPushButton("Try a sample")
        self.sample_button.setToolTip("Classify one of the bundled sample images")
        self.sample_button.clicked.connect(self.try_sample)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Classify the current image again (Ctrl+R)")
        self.run_button.setShortcut(QKeySequence("Ctrl+R"))
        self.run_button.clicked.connect(self.run)
        for b in (self.open_button, self.folder_button, self.paste_button, self.sample_button, self.run_button):
            bar.addWidget(b)
        root.addLayout(bar)

        views = QHBoxLayout()
        self.view_group = QButtonGroup(self)
        self.single_view_button = QToolButton(text="Image", checkable=True, checked=True)
        self.folder_view_button = QToolButton(text="Folder results", checkable=True)
        for i, b in enumerate((self.single_view_button, self.folder_view_button)):
            self.view_group.addButton(b, i)
            # the selected view must stand out in every palette
            b.setStyleSheet("QToolButton { padding: 3px 10px; border: 1px solid palette(mid); border-radius: 3px; }"
                            "QToolButton:checked { background: palette(highlight); color: palette(highlighted-text);"
                            " border-color: palette(highlight); }")
            views.addWidget(b)
        self.view_group.idClicked.connect(self._switch_view)
        views.addStretch(1)
        root.addLayout(views)

        self.stack = QStackedWidget()
        root.addWidget(self.stack, 1)

        # single image page
        single = QSplitter(Qt.Orientation.Horizontal)
        single.setChildrenCollapsible(False)
        self.preview = ImagePreview("Drop an image or a folder here,\npaste one (Ctrl+V), or use Open image…")
        single.addWidget(self.preview)
        panel = QWidget()
        pl = QVBoxLayout(panel)
        pl.setContentsMargins(16, 4, 4, 4)
        pl.setSpacing(8)
        self.file_label = QLabel("")
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.class_label = QLabel("")
        self.class_label.hide()  # appears with the first result
        self.class_label.setFont(big_font(self, 2.4))
        self.class_label.setWordWrap(True)
        self.class_label.setAccessibleName("Predicted class")
        self.confidence_label = QLabel("Pick an image to see what the model thinks it is — or press Try a sample.")
        self.confidence_label.setFont(big_font(self, 1.3, bold=False))
        self.confidence_label.setWordWrap(True)
        self.error_banner = Banner()
        self.topk_title = QLabel("Top classes")
        self.topk_title.setStyleSheet("font-weight: 600;")
        self.topk = TopKBars()
        self.topk_title.hide()
        for w in (self.file_label, self.class_label, self.confidence_label, self.error_banner, self.topk_title,
                  self.topk):
            pl.addWidget(w)
        pl.addStretch(1)
        panel.setMinimumWidth(300)
        single.addWidget(panel)
        single.setStretchFactor(0, 3)
        single.setStretchFactor(1, 2)
        self.stack.addWidget(single)

        # folder page
        folder = QWidget()
        fl = QVBoxLayout(folder)
        fl.setContentsMargins(0, 0, 0, 0)
        tools = QHBoxLayout()
        self.folder_label = QLabel("Open a folder to classify all its images.")
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.folder_progress = QProgressBar()
        self.folder_progress.setMaximumWidth(220)
        self.folder_progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.lowest_button = QPushButton("Lowest confidence first")
        self.lowest_button.setToolTip("Sort so the images the model is least sure about come first")
        self.lowest_button.clicked.connect(lambda: self.table.sortByColumn(3, Qt.SortOrder.AscendingOrder))
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export_csv)
        for w in (self.folder_label, self.folder_progress, self.cancel_button, self.lowest_button, self.export_button):
            tools.addWidget(w)
        fl.addLayout(tools)
        self.folder_errors = Banner()
        fl.addWidget(self.folder_errors)
        self.table_model = QStandardItemModel(0, 4)
        self.table_model.setHorizontalHeaderLabels(["", "File", "Class", "Confidence"])
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(54)
        self.table.setIconSize(QPixmap(48, 48).size())
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, 58)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._row_activated)
        fl.addWidget(self.table, 1)
        self.stack.addWidget(folder)
        self._update_buttons()

    def _switch_view(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self._update_buttons()

    # ---- state ----------------------------------------------------------------------------------
    def set_ready(self, device: str) -> None:
        """torch is imported: models can load."""
        self.ready = True
        self.device = device
        self._model_chosen()
        self._update_buttons()

    def busy(self) -> bool:
        return self._task is not None

    def _update_buttons(self) -> None:
        has_model = self.model_path is not None
        idle = self._task is None
        for b in (self.open_button, self.folder_button, self.paste_button):
            b.setEnabled(True)
        self.sample_button.setEnabled(bool(self.sample_files()))
        has_input = self.current_source is not None or (self.stack.currentIndex() == 1 and bool(self._folder))
        self.run_button.setEnabled(self.ready and has_model and idle and has_input)
        self.export_button.setEnabled(bool(self.results) and idle)
        self.lowest_button.setEnabled(bool(self.results))

    def _registry_changed(self) -> None:
        wanted = self.model_combo.currentData() or self.settings.get("predict.model") or self.registry.default_name
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for e in self.registry.working_entries():
            acc = e.val_accuracy
            label = e.name + (" ★" if e.name == self.registry.default_name else "") + \
                (f"  — val. accuracy {acc:.1%}" if acc is not None else "")
            self.model_combo.addItem(label, e.name)
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         f"{e.meta['arch']}, {e.meta['num_classes']} classes",
                                         Qt.ItemDataRole.ToolTipRole)
        if self.model_combo.count() == 0:
            self.model_combo.setPlaceholderText("No models yet: train or import one")
        index = self.model_combo.findData(wanted)
        if index < 0:
            index = self.model_combo.findData(self.registry.default_name)
        self.model_combo.setCurrentIndex(index if index >= 0 else (0 if self.model_combo.count() else -1))
        self.model_combo.blockSignals(False)
        self._model_chosen()

    def current_model_name(self) -> str | None:
        return self.model_combo.currentData()

    def select_model(self, name: str) -> None:
        index = self.model_combo.findData(name)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)

    def _model_chosen(self, *_):
        name = self.current_model_name()
        entry = self.registry.entry(name) if name else None
        path = str(entry.path) if entry is not None else None
        if path != self.model_path:
            self.model_path = path
            self.model_loaded = False
        if name:
            self.settings.set("predict.model", name)
        self.active_model_changed.emit(name or "")
        if self.ready and path and not self.model_loaded and self._model_task is None:
            task = Task(load_model_task, path, self.device, name="load-model")
            task.succeeded.connect(self._model_ready)
            task.failed.connect(self._model_failed)
            self._model_task = task
            self.status_message.emit(f"Loading model {name}…")
            task.start()
        self._update_buttons()

    def _model_ready(self, info: dict) -> None:
        self._model_task = None
        if info["path"] != self.model_path:  # the user picked another one meanwhile
            self._model_chosen()
            return
        self.model_loaded = True
        name = self.current_model_name()
        self.status_message.emit(f"Model ready: {name} ({info['arch']}, {info['classes']} classes)")
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending()
        elif self.current_source is not None and self.stack.currentIndex() == 0:
            self.run()

    def _model_failed(self, message: str) -> None:
        self._model_task = None
        self.model_loaded = False
        self._pending = None
        self._show_error(f"The model could not be loaded: {message}")

    # ---- inputs ---------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        start = self.settings.get("predict.last_image_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image", start,
            "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        start = self.settings.get("predict.last_folder") or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Classify all images in a folder", start)
        if folder:
            self.open_path(folder)

    def open_path(self, path: str) -> None:
        p = Path(path)
        if p.is_dir():
            self.settings.set("predict.last_folder", str(p))
            self.run_folder(str(p))
        else:
            self.settings.set("predict.last_image_dir", str(p.parent))
            self.set_source(str(p), str(p))

    def paste(self) -> None:
        clipboard = QApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasUrls():
            paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if paths:
                self.open_path(paths[0])
                return
        image = clipboard.image()
        if image.isNull():
            self._show_error("The clipboard holds no image. Copy an image (or an image file) and paste again.")
            return
        self.set_source(qimage_to_png_bytes(image), "pasted image")

    def sample_files(self) -> list[Path]:
        """The bundled sample images (listed once)."""
        if self._samples is None:
            folder = resources.path(SAMPLES_DIR)
            self._samples = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")) \
                if folder.is_dir() else []
        return self._samples

    def try_sample(self) -> None:
        files = self.sample_files()
        digits = [f for f in files if f.name.startswith("digit")] or files
        if not digits:
            return
        last = self.current_source[1] if self.current_source else None
        choices = [f for f in digits if str(f) != last] or digits
        self.set_source(str(random.choice(choices)), None)

    def set_source(self, source, name: str | None) -> None:
        label = name or (str(source) if isinstance(source, str) else "image")
        self.current_source = (source, label)
        self.stack.setCurrentIndex(0)
        self.single_view_button.setChecked(True)
        self._update_buttons()
        self.run()

    # ---- running --------------------------------------------------------------------------------
    def run(self) -> None:
        if self.stack.currentIndex() == 1 and self._folder:
            self.run_folder(self._folder)
            return
        if self.current_source is None:
            return
        source, name = self.current_source
        self.file_label.setText(Path(name).name if isinstance(source, str) else name)
        self.file_label.setToolTip(name)
        if not self._can_run(lambda: self.run()):
            return
        self.error_banner.clear_message()
        self.confidence_label.setText("Classifying…")
        task = Task(predict_image_task, self.model_path, source, name, self.device, name="predict-image")
        task.succeeded.connect(self._image_result)
        task.failed.connect(self._task_failed)
        self._start(task)

    def _can_run(self, retry) -> bool:
        """True when a prediction can start now; otherwise `retry` runs once the obstacle is gone
        (the running task finished, PyTorch imported, the model loaded). The latest request wins."""
        if self._task is not None:
            self._pending = retry
            self._task.cancel()
            return False
        if not self.ready:
            self._pending = retry
            self.confidence_label.setText("Starting up: PyTorch is loading…")
            return False
        if self.model_path is None:
            self._pending = None
            self._show_error("No model is available. Train one in the Train tab or import one in the Models tab.")
            return False
        if not self.model_loaded:
            self._pending = retry
            self.confidence_label.setText("Loading the model…")
            return False
        return True

    def _start(self, task: Task) -> None:
        self._task = task
        task.finished.connect(self._task_finished)
        self._update_buttons()
        task.start()

    def _task_finished(self) -> None:
        self._task = None
        self.folder_progress.hide()
        self.cancel_button.hide()
        self._update_buttons()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending()

    def _image_result(self, result: dict) -> None:
        if "error" in result:
            self.preview.clear_image("This file could not be shown.")
            self._show_error(result["error"])
            return
        pred = result["prediction"]
        self.preview.set_image(result["preview"])
        self.class_label.setText(pred.label)
        self.class_label.show()
        w, h = result["size"]
        self.confidence_label.setText(f"{pred.confidence:.1%} sure · {w}×{h} px")
        self.topk_title.setVisible(len(pred.top_k) > 1)
        self.topk.set_rows(pred.top_k)
        self.status_message.emit(f"{Path(result['name']).name}: {pred.label} ({pred.confidence:.1%})")

    def _show_error(self, message: str) -> None:
        self.class_label.setText("—")
        self.class_label.show()
        self.confidence_label.setText("")
        self.topk.set_rows([])
        self.topk_title.hide()
        self.error_banner.show_message(message, "error")
        self.status_message.emit(message.splitlines()[0][:200])

    def _task_failed(self, message: str) -> None:
        self._show_error(message)
        self.folder_label.setText(message)

    # ---- folders --------------------------------------------------------------------------------
    def run_folder(self, folder: str) -> None:
        self.stack.setCurrentIndex(1)
        self.folder_view_button.setChecked(True)
        self.folder_label.setText(f"{folder}")
        self._folder = folder
        if not self._can_run(lambda: self.run_folder(folder)):
            return
        self.table.setSortingEnabled(False)
        self.table_model.removeRows(0, self.table_model.rowCount())
        self.results = []
        self.folder_errors.clear_message()
        self.folder_progress.setRange(0, 0)
        self.folder_progress.show()
        self.cancel_button.show()
        task = Task(predict_folder_task, self.model_path, folder, self.device, name="predict-folder")
        task.event.connect(self._folder_progress)
        task.succeeded.connect(self._folder_done)
        task.failed.connect(self._task_failed)
        self._start(task)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _folder_progress(self, ev: dict) -> None:
        total = ev.get("total", 0)
        self.folder_progress.setRange(0, max(total, 1))
        self.folder_progress.setValue(ev.get("done", 0))
        for pred, thumb in ev.get("rows", []):
            self._add_row(pred, thumb)
        errors = [p for p in self.results if not p.ok]
        self.folder_label.setText(f"{self._folder} — {len(self.results)} of {total} image(s)")
        if errors:
            more = f"\n… and {len(errors) - 5} more" if len(errors) > 5 else ""
            lines = "\n".join(p.error for p in errors[:5]) + more
            self.folder_errors.show_message(f"{len(errors)} file(s) could not be classified:\n{lines}", "error")

    def _add_row(self, pred, thumb: QImage | None) -> None:
        self.results.append(pred)
        icon_item = QStandardItem()
        if thumb is not None:
            icon_item.setData(QPixmap.fromImage(thumb), Qt.ItemDataRole.DecorationRole)
        file_item = QStandardItem(Path(pred.path).name)
        file_item.setToolTip(pred.path)
        file_item.setData(pred.path, Qt.ItemDataRole.UserRole)
        if pred.ok:
            class_item = QStandardItem(pred.label)
            conf_item = QStandardItem(f"{pred.confidence:.1%}")
            conf_item.setData(pred.confidence, SORT_ROLE)
            conf_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            class_item.setToolTip(", ".join(f"{lbl} {p:.1%}" for lbl, p in pred.top_k))
        else:
            class_item = QStandardItem("Error")
            class_item.setForeground(Qt.GlobalColor.red)
            class_item.setToolTip(pred.error)
            conf_item = QStandardItem(pred.error.rsplit(": ", 1)[-1])
            conf_item.setData(-1.0, SORT_ROLE)  # failures sort before the least confident
            conf_item.setToolTip(pred.error)
        icon_item.setData(len(self.results), SORT_ROLE)
        file_item.setData(file_item.text().lower(), SORT_ROLE)
        class_item.setData(class_item.text().lower(), SORT_ROLE)
        self.table_model.appendRow([icon_item, file_item, class_item, conf_item])

    def _folder_done(self, result: dict) -> None:
        self.table.setSortingEnabled(True)
        ok = sum(p.ok for p in self.results)
        bad = len(self.results) - ok
        if result["total"] == 0:
            self.folder_label.setText(f"{self._folder} — no images found (JPEG, PNG, BMP, GIF, TIFF, WebP)")
        else:
            state = "cancelled after" if result["cancelled"] else "done:"
            self.folder_label.setText(f"{self._folder} — {state} {ok} classified" + (f", {bad} failed" if bad else ""))
        self.status_message.emit(self.folder_label.text())
        self._update_buttons()

    def _row_activated(self, index) -> None:
        path = self.proxy.index(index.row(), 1).data(Qt.ItemDataRole.UserRole)
        if path:
            self.set_source(path, path)

    def export_csv(self) -> None:
        if not self.results:
            return
        start = os.path.join(self.settings.get("predict.last_folder") or str(Path.home()), "predictions.csv")
        out, _ = QFileDialog.getSaveFileName(self, "Export results", start, "CSV files (*.csv)")
        if out:
            self.write_csv(out)

    def write_csv(self, out: str) -> None:
        from resnet_gui.core.predict import write_csv

        try:
            write_csv(self.results, out, top_k=TOP_K)
        except OSError as exc:
            self.folder_errors.show_message(f"Could not write {out}: {exc.strerror or exc}", "error")
            return
        self.status_message.emit(f"Exported {len(self.results)} result(s) to {out}")

    # ---- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()) or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if paths:
            self.open_path(paths[0])
        elif mime.hasImage():
            self.set_source(qimage_to_png_bytes(QImage(mime.imageData())), "dropped image")
        event.acceptProposedAction()


def qimage_to_png_bytes(image: QImage) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())
