"""Predict tab: choose a model and an image (button, drop, paste, sample) or a folder; see the class.

The tab wires a PredictSession (the work) to two views: SingleImageView and FolderResultsView."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import plural

from ..common.model_words import incomplete_words
from ..common.qimages import qimage_to_png_bytes
from ..common.widgets import ToggleButton
from .answer import (
    THRESHOLD_SETTING,
    UNFAMILIAR,
    UNSURE,
    confidence_words,
    knows_summary,
    threshold_from,
    trust_words,
)
from .folder_results_view import FolderResultsView
from .session import FolderDone, ImageResult, LoadedModel, PredictSession
from .single_image_view import SingleImageView

SINGLE, FOLDER = 0, 1
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


class PredictTab(QWidget):
    status_message = Signal(str)
    active_model_changed = Signal(str)
    evaluate_folder_requested = Signal(str, str)   # (model name, folder laid out by class)
    add_familiarity_requested = Signal(str)        # model name: the Models tab's Add familiarity data…

    def __init__(self, registry, settings, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.session = PredictSession(self)
        self.current_source = None  # (source, name) of the image shown
        self._sample_wanted = False  # Try a sample was pressed before the model (and its samples) loaded
        self._sample_turns: dict[str, int] = {}  # model path -> how many of its samples were tried
        self._build()
        self._connect_session()
        registry.changed.connect(self._registry_changed)
        self.setAcceptDrops(True)

    # ---- layout -----------------------------------------------------------------------------------
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
        self.open_button = self._button("Open image…", "Open an image file (Ctrl+O)", self.open_image_dialog)
        self.folder_button = self._button("Open folder…", "Classify every image in a folder (Ctrl+Shift+O)",
                                          self.open_folder_dialog)
        self.paste_button = self._button("Paste", "Classify the image on the clipboard (Ctrl+V)", self.paste)
        self.sample_button = self._button("Try a sample", "Classify an image this model knows", self.try_sample)
        self.run_button = self._button("Run", "Classify the current image or folder again (Ctrl+R)", self.run)
        self.run_button.setDefault(True)
        self.run_button.setShortcut(QKeySequence("Ctrl+R"))
        for b in (self.open_button, self.folder_button, self.paste_button, self.sample_button, self.run_button):
            bar.addWidget(b)
        root.addLayout(bar)

        views = QHBoxLayout()
        self.view_group = QButtonGroup(self)
        self.single_view_button = ToggleButton("Image")
        self.single_view_button.setChecked(True)
        self.folder_view_button = ToggleButton("Folder results")
        for i, b in enumerate((self.single_view_button, self.folder_view_button)):
            self.view_group.addButton(b, i)
            views.addWidget(b)
        self.view_group.idClicked.connect(self._switch_view)
        views.addStretch(1)
        threshold_label = QLabel("Not sure below")
        views.addWidget(threshold_label)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0, 100)
        self.threshold_spin.setDecimals(1)  # 99.8 % stays 99.8 %
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setValue(round(100 * threshold_from(self.settings), 1))
        tip = ("Answers less sure than this are shown as “Not sure”, with the top candidates instead of one class. "
               "A model with calibration means it: of the answers at 90 %, about 90 in 100 are right.")
        self.threshold_spin.setToolTip(tip)
        threshold_label.setToolTip(tip)
        threshold_label.setBuddy(self.threshold_spin)
        self.threshold_spin.setAccessibleName("Not sure below")
        self.threshold_spin.valueChanged.connect(self._threshold_changed)
        views.addWidget(self.threshold_spin)
        root.addLayout(views)

        self.stack = QStackedWidget()
        self.single = SingleImageView()
        self.folder = FolderResultsView(self.settings)
        self.stack.addWidget(self.single)
        self.stack.addWidget(self.folder)
        root.addWidget(self.stack, 1)
        self.folder.status_message.connect(self.status_message)
        self.folder.cancel_requested.connect(self.session.cancel_folder)
        self.folder.rerun_requested.connect(self.run)
        self.folder.image_activated.connect(lambda path: self.set_source(path, path))
        self.folder.evaluate_requested.connect(
            lambda folder: self.evaluate_folder_requested.emit(self.folder.model_name or "", folder))
        self.folder.set_threshold(self.threshold())
        self.single.threshold = self.threshold()
        self.single.explain_requested.connect(self._explain)
        self.single.explain_cleared.connect(self.session.cancel_explain)
        self._update_buttons()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def _connect_session(self) -> None:
        s = self.session
        s.waiting.connect(self._waiting)
        s.model_started.connect(lambda name: self.status_message.emit(f"Loading the model “{name}”…"))
        s.model_done.connect(self._model_ready)
        s.model_failed.connect(self._model_failed)
        s.image_started.connect(lambda name: self.single.show_waiting(name, "Classifying…"))
        s.image_done.connect(self._image_result)
        s.image_failed.connect(lambda _name, failure: self._show_error(failure.message))
        s.folder_started.connect(self.folder.start)
        s.folder_progress.connect(self.folder.add_rows)
        s.folder_done.connect(self._folder_done)
        s.folder_failed.connect(lambda failure: self.folder.fail(failure.message))
        s.folder_labels.connect(self.folder.set_labels)
        s.explain_done.connect(self.single.show_explanation)
        s.explain_failed.connect(lambda _name, failure: self.single.explanation_failed(failure.message))
        s.busy_changed.connect(lambda _busy: self._update_buttons())

    def _switch_view(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self._update_buttons()

    def _show_view(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        (self.single_view_button if index == SINGLE else self.folder_view_button).setChecked(True)

    # ---- state ------------------------------------------------------------------------------------
    def threshold(self) -> float:
        """The "not sure below" threshold, a fraction."""
        return self.threshold_spin.value() / 100

    def _threshold_changed(self, _value: float) -> None:
        value = self.threshold()
        self.settings.set(THRESHOLD_SETTING, value)
        self.single.set_threshold(value)
        self.folder.set_threshold(value)

    def set_ready(self, device: str) -> None:
        """The window is up: models can load (the engine is chosen per model, core/engines/choose.py)."""
        self.session.set_ready(device)
        self._update_buttons()

    def busy(self) -> bool:
        return self.session.busy()

    def _update_buttons(self) -> None:
        has_input = self.current_source is not None if self.stack.currentIndex() == SINGLE \
            else self.folder.folder is not None
        self.run_button.setEnabled(self.session.ready and self.session.model_path is not None and has_input)
        model = self.session.model
        self.sample_button.setEnabled(self.session.model_path is not None)
        if model is not None:
            self.sample_button.setToolTip(
                f"Classify one of {plural(len(model.samples), 'image')} this model knows" if model.samples
                else model.no_samples_reason)

    def _registry_changed(self) -> None:
        wanted = self.registry.current_name(self.model_combo.currentData() or self.settings.get("predict.model")) \
            or self.registry.default_name
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for e in self.registry.working_entries():
            figure = e.accuracy()  # test accuracy where the model has one
            incomplete = incomplete_words(e.meta)
            label = e.name + (" ★" if e.name == self.registry.default_name else "") + \
                (f"  ({figure[1]} {figure[0]:.1%}" + (f"; {incomplete})" if incomplete else ")")
                 if figure is not None else f"  ({incomplete})" if incomplete else "")
            self.model_combo.addItem(label, e.name)
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         f"{e.meta['arch']}, {plural(e.meta['num_classes'], 'class', 'classes')}",
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

    def _model_chosen(self, *_) -> None:
        name = self.current_model_name()
        entry = self.registry.entry(name) if name else None
        if name:
            self.settings.set("predict.model", name)
        self.session.set_model(name if entry else None, str(entry.path) if entry is not None else None)
        self.folder.set_current_model(name)
        self.active_model_changed.emit(name or "")
        self._update_buttons()

    def _model_ready(self, model: LoadedModel) -> None:
        if not self.folder.running:  # the tooltips of rows made by this model say where "unfamiliar" starts
            self.folder.familiarity_limit = model.familiarity_threshold
        limits = [word for word, missing in (("uncalibrated", not model.calibrated),
                                             ("no familiarity data", not model.has_familiarity)) if missing]
        self.status_message.emit(f"Model ready: {model.name} ({model.arch}, "
                                 f"{plural(model.num_classes, 'class', 'classes')}"
                                 + (f"; {', '.join(limits)}" if limits else "") + ").")
        self._update_buttons()
        if self._sample_wanted:
            self.try_sample()
        elif not self.session.has_pending() and self.current_source is not None and self.stack.currentIndex() == SINGLE:
            self.run()  # the image on screen, classified by the newly chosen model

    def _model_failed(self, name: str, failure) -> None:
        self._sample_wanted = False
        self._update_buttons()
        self._show_error(f"The model “{name}” could not be loaded: {failure.message}",
                         [("Try again", self.run)] if self.current_source is not None else [])

    # ---- inputs -----------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        start = self.settings.get("predict.last_image_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, IMAGE_FILTER)
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
        if image.isNull():  # the result on screen stays
            self._show_view(SINGLE)
            self.single.show_notice("The clipboard holds no image. Copy an image (or an image file) and paste again.")
            self.status_message.emit("The clipboard holds no image.")
            return
        self.set_source(qimage_to_png_bytes(image), "pasted image")

    def try_sample(self) -> None:
        model = self.session.model
        if model is None:  # its samples are known once it has loaded
            self._sample_wanted = self.session.model_path is not None
            if self._sample_wanted:
                self._show_view(SINGLE)
                self.single.show_waiting(None, "Loading the model…" if self.session.ready
                                         else "Starting up…")
            return
        self._sample_wanted = False
        if not model.samples:
            self._show_view(SINGLE)
            self.single.show_notice(model.no_samples_reason)
            return
        # in turn, so that every sample comes (the hard one and the not-a-digit ones too) before any repeats
        turn = self._sample_turns.get(model.path, 0)
        self._sample_turns[model.path] = turn + 1
        self.set_source(model.samples[turn % len(model.samples)], None)

    def set_source(self, source, name: str | None) -> None:
        label = name or (str(source) if isinstance(source, str) else "image")
        self.current_source = (source, label)
        self._show_view(SINGLE)
        self._update_buttons()
        self.run()

    # ---- running ----------------------------------------------------------------------------------
    def run(self) -> None:
        if self.stack.currentIndex() == FOLDER and self.folder.folder:
            self.run_folder(self.folder.folder)
            return
        if self.current_source is None:
            return
        source, name = self.current_source
        self.single.show_waiting(name, "Classifying…")
        self.session.classify_image(source, name)

    def run_folder(self, folder: str) -> None:
        self._show_view(FOLDER)
        self.folder.folder = folder
        self.session.classify_folder(folder)
        self._update_buttons()

    def _trust(self, model: LoadedModel | None) -> tuple:
        """The trust banner beside every answer of `model`: calibrated or not, how well it flags unfamiliar
        images, and Add familiarity data… where that would help."""
        if model is None:
            return ()
        text, kind, helps = trust_words(model)
        name = model.name
        return (text, kind, [("Add familiarity data…", lambda: self.add_familiarity_requested.emit(name))]
                if helps else [])

    def _waiting(self, kind: str, message: str) -> None:
        if kind == "image":
            self.single.show_waiting(None, message)
        elif self.folder.folder:
            self.folder.waiting(self.folder.folder, message)

    def _image_result(self, result: ImageResult) -> None:
        model = self.session.model
        self.single.show_result(result, self.threshold(), knows_summary(model.class_names) if model else "",
                                self._trust(model))
        if result.error is not None:
            self.status_message.emit(result.error.splitlines()[0][:200])
        else:
            pred = result.prediction
            state = {UNSURE: " — not sure", UNFAMILIAR: " — unlike its training images"}.get(
                pred.state(self.threshold()), "")
            shown = confidence_words(pred.confidence, pred, self.threshold())  # never 99.9 % beside "not sure"
            self.status_message.emit(f"{Path(result.name).name}: {pred.label} ({shown}){state}.")

    def _explain(self, class_index: int) -> None:
        model = self.session.model
        if self.current_source is None or model is None or not 0 <= class_index < len(model.class_names):
            return
        self.session.explain(self.current_source[0], self.current_source[1], class_index)

    def _folder_done(self, done: FolderDone) -> None:
        self.folder.finish(done)
        self.folder.set_current_model(self.current_model_name())
        self._update_buttons()

    def _show_error(self, message: str, actions=()) -> None:
        self.single.show_error(message, actions)
        self.status_message.emit(message.splitlines()[0][:200])

    def export_csv(self) -> None:
        self.folder.export_csv()

    # ---- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()) or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if paths:
            self.open_path(paths[0])
        elif mime.hasImage():
            self.set_source(qimage_to_png_bytes(QImage(mime.imageData())), "dropped image")
        event.acceptProposedAction()

