"""Evaluate tab: how good is a model, really? Pick a model and labelled data (a folder of class folders,
the CIFAR-10 test set, or the validation split of the run that made it), press Evaluate, and read the
headline figures, the confusion matrix (click a cell for its images), the per-class table and the
reliability diagram. Export writes one CSV row per image and a PNG of the matrix."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import plural

from ..common import theme
from ..common.label_issues_view import LabelIssuesView, LabelOutcome, label_task
from ..common.lazy import LazyPage
from ..common.threshold import threshold_from
from ..common.widgets import Banner, empty_state_stack
from ..common.workers import TaskSlot
from .confused_pairs import ConfusedPairs
from .export import ExportRefused, export_evaluation
from .figure_cards import FigureCards, evaluation_cards
from .image_gallery import ImageGallery
from .matrix_panel import MatrixPanel
from .per_class_table import PerClassTable, with_filter
from .session import MAX_GALLERY, EvalOutcome, EvalRequest, EvaluateSession

DATA_KINDS = [("folder", "A folder of class folders"), ("cifar10", "The CIFAR-10 test set"),
              ("validation", "Its validation split")]
GALLERY, PER_CLASS, PAIRS, RELIABILITY, THRESHOLDS, LABELS = 0, 1, 2, 3, 4, 5
LABELS_EMPTY = ("Images that may be filed under the wrong class: the model's answers show which labels it doubts. "
                "Choose a model and a folder of class folders, then press Find label mistakes.")
PLOT_MODULES = ("resnet_gui.ui.evaluate.reliability_plot", "resnet_gui.ui.evaluate.curves_panel")


def _reliability_plot():
    from .reliability_plot import ReliabilityPlot

    return ReliabilityPlot()


def _curves_panel():
    from .curves_panel import CurvesPanel

    return CurvesPanel()


class EvaluateTab(QWidget):
    status_message = Signal(str)
    open_image_requested = Signal(str)   # show this image in the Predict tab
    label_decisions = Signal(str, dict, set)   # folder, relabel (path -> class), exclude: for the Train tab

    def __init__(self, registry, settings, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.session = EvaluateSession(self)
        self._labels_slot = TaskSlot("label-check", self)
        self._labels_slot.busy_changed.connect(lambda _busy: self._update_buttons())
        self.outcome: EvalOutcome | None = None
        self._build()
        self.session.evaluation.started.connect(self._started)
        self.session.evaluation.progress.connect(self._progress)
        self.session.evaluation.done.connect(self._done)
        self.session.evaluation.failed.connect(self._failed)
        self.session.evaluation.busy_changed.connect(lambda _busy: self._update_buttons())
        self.session.gallery.progress.connect(self.gallery.add)
        registry.changed.connect(self._registry_changed)

    # ---- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(12, 12, 12, 12)
        root.setSpacing(8)
        first = QHBoxLayout()
        first.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(200)
        self.model_combo.setPlaceholderText("Loading models…")
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        first.addWidget(self.model_combo, 1)
        first.addWidget(QLabel("Data:"))
        self.data_combo = QComboBox()
        for key, label in DATA_KINDS:
            self.data_combo.addItem(label, key)
        self.data_combo.setToolTip("Images with known classes: a folder laid out as folder/<class>/…, the 10,000 "
                                   "CIFAR-10 test images, or the images held out when the model was trained")
        self.data_combo.currentIndexChanged.connect(self._data_kind_changed)
        first.addWidget(self.data_combo)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder/<class>/image.jpg …")
        self.folder_edit.textChanged.connect(lambda _t: self._update_buttons())
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_folder)
        first.addWidget(self.folder_edit, 2)
        first.addWidget(self.choose_button)
        root.addLayout(first)
        second = QHBoxLayout()
        self.tta_check = QCheckBox("Also look at each image mirrored (test-time augmentation)")
        self.tta_check.setToolTip("Average each image's answer with its mirror image's: often a little more "
                                  "accurate, twice as slow")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setDefault(True)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(320)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save one CSV row per image (path, true, predicted, confidence), the "
                                      "headline figures and the per-class table as CSV files, and the confusion "
                                      "matrix as a PNG figure, side by side")
        self.export_button.clicked.connect(self.export_dialog)
        self.labels_button = QPushButton("Find label mistakes")
        self.labels_button.setToolTip("Rank the folder's images whose class this model doubts (confident learning "
                                      "on its answers): meaningful on images the model did not train on")
        self.labels_button.clicked.connect(self.find_label_mistakes)
        for w in (self.tta_check, self.evaluate_button, self.labels_button, self.cancel_button, self.progress):
            second.addWidget(w)
        second.addStretch(1)
        second.addWidget(self.export_button)
        root.addLayout(second)
        self.banner = Banner()
        self.verdict_banner = Banner()
        root.addWidget(self.banner)
        root.addWidget(self.verdict_banner)
        self.cards = FigureCards()
        root.addWidget(self.cards)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.matrix_panel = MatrixPanel()
        self.matrix = self.matrix_panel.view
        self.matrix.cell_clicked.connect(self.show_cell)
        splitter.addWidget(self.matrix_panel)
        self.details = QTabWidget()
        self.gallery = ImageGallery()
        self.gallery.image_activated.connect(self.open_image_requested)
        self.per_class = PerClassTable()
        # the plots are made when their page is first shown (or an evaluation's results need them): pyqtgraph
        # stays off the start-up path
        self.reliability_page = LazyPage(_reliability_plot)
        self.details.addTab(self.gallery, "Images")
        self.per_class_page = with_filter(self.per_class)
        self.details.addTab(self.per_class_page, "Per class")
        self.pairs = ConfusedPairs()
        self.pairs.pair_clicked.connect(self.show_cell)
        self.details.addTab(self.pairs, "Confused pairs")
        self.details.addTab(self.reliability_page, "Reliability")
        self.curves_page = LazyPage(_curves_panel)
        self.curves_page.made.connect(lambda panel: panel.save_requested.connect(self.save_operating_point))
        self.details.addTab(self.curves_page, "Thresholds")
        self.labels = LabelIssuesView(training_decisions=True)
        self.labels.decisions_changed.connect(self._label_decisions)
        self.labels_page = QWidget()   # a sentence until the first search's results replace it
        self.labels_stack, self.labels_empty = empty_state_stack(self.labels_page, LABELS_EMPTY)
        self.labels_stack.addWidget(self.labels)
        self.details.addTab(self.labels_page, "Label mistakes")
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.data_combo.setCurrentIndex(max(0, self.data_combo.findData(
            self.settings.get("evaluate.data", "folder"))))
        self.folder_edit.setText(self.settings.get("evaluate.folder", ""))
        self.tta_check.setChecked(self.settings.get("evaluate.tta", False))
        self._data_kind_changed()
        self._show_running(False)

    @property
    def reliability(self):
        """The reliability diagram (made on first use)."""
        return self.reliability_page.widget()

    @property
    def curves(self):
        """The Thresholds page's curves panel (made on first use)."""
        return self.curves_page.widget()

    # ---- state ------------------------------------------------------------------------------------
    def set_ready(self, device: str) -> None:
        self.session.set_ready(device)
        self._update_buttons()

    def busy(self) -> bool:
        return self.session.busy()

    def data_kind(self) -> str:
        return self.data_combo.currentData()

    def current_model_name(self) -> str | None:
        return self.model_combo.currentData()

    def select_model(self, name: str) -> None:
        index = self.model_combo.findData(name)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)

    def _registry_changed(self) -> None:
        wanted = self.registry.current_name(self.current_model_name() or self.settings.get("evaluate.model")) \
            or self.registry.default_name
        if self.outcome is not None and self.registry.current_name(self.outcome.request.model_name) \
                != self.outcome.request.model_name:  # the results on screen are of the model under its new name
            renamed = replace(self.outcome.request, model_name=self.registry.current_name(
                self.outcome.request.model_name))
            self.outcome = replace(self.outcome, request=renamed)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for e in self.registry.working_entries():
            self.model_combo.addItem(e.name + (" ★" if e.name == self.registry.default_name else ""), e.name)
        if self.model_combo.count() == 0:
            self.model_combo.setPlaceholderText("No models yet: train or import one")
        index = self.model_combo.findData(wanted)
        self.model_combo.setCurrentIndex(index if index >= 0 else (0 if self.model_combo.count() else -1))
        self.model_combo.blockSignals(False)
        self._model_chosen()

    def _model_chosen(self, *_) -> None:
        name = self.current_model_name()
        if name:
            self.settings.set("evaluate.model", name)
        self._update_buttons()

    def _data_kind_changed(self, *_) -> None:
        folder = self.data_kind() == "folder"
        self.folder_edit.setVisible(folder)
        self.choose_button.setVisible(folder)
        self.settings.set("evaluate.data", self.data_kind())
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.session.busy() or self._labels_slot.busy()
        has_data = self.data_kind() != "folder" or bool(self.folder_edit.text().strip())
        self.evaluate_button.setEnabled(self.session.ready and not running and bool(self.current_model_name())
                                        and has_data)
        self.labels_button.setEnabled(self.session.ready and not running and bool(self.current_model_name())
                                      and self.data_kind() == "folder" and has_data)
        self.evaluate_button.setToolTip("" if self.session.ready else "Starting up…")
        self.export_button.setEnabled(self.outcome is not None and not running)
        self._show_running(running)

    def _show_running(self, running: bool) -> None:
        running = running or self._labels_slot.busy()
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)

    # ---- running ----------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with one sub-folder per class",
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)

    def evaluate_folder(self, model_name: str, folder: str) -> None:
        """Evaluate `model_name` on `folder` now (from the Predict tab's folder view)."""
        self.select_model(model_name)
        self.data_combo.setCurrentIndex(self.data_combo.findData("folder"))
        self.folder_edit.setText(folder)
        self.evaluate()

    def evaluate_model(self, model_name: str, data: str = "validation") -> None:
        """Evaluate `model_name` on its validation split (or "cifar10") now (after a training run)."""
        self.select_model(model_name)
        self.data_combo.setCurrentIndex(self.data_combo.findData(data))
        self.evaluate()

    def evaluate(self) -> None:
        name = self.current_model_name()
        entry = self.registry.entry(name) if name else None
        if entry is None:
            self.banner.show_message("Choose a model to evaluate.", "info")
            return
        if not self.session.ready:
            self.banner.show_message("Still starting up; press Evaluate again in a moment.", "info")
            return
        data = self.data_kind()
        if data == "folder":
            data = self.folder_edit.text().strip()
            if not data:
                self.banner.show_message("Choose a folder laid out as folder/<class>/… to evaluate on.", "info",
                                         [("Choose…", self.choose_folder)])
                return
            self.settings.set("evaluate.folder", data)
        self.settings.set("evaluate.tta", self.tta_check.isChecked())
        request = EvalRequest(name, str(entry.path), data, self.tta_check.isChecked())
        self.banner.clear_message()
        self.session.evaluate(request)
        self.status_message.emit(f"Evaluating “{name}” on {request.data_words()}…")
        self._update_buttons()

    def cancel(self) -> None:
        if self._labels_slot.busy():
            self._labels_slot.cancel()
            self.banner.show_message("The search for label mistakes was cancelled; nothing was changed.", "info")
        else:
            self.session.cancel()
            self.banner.show_message("Evaluation cancelled.", "info")
        self._update_buttons()

    def find_label_mistakes(self) -> None:
        """The chosen folder's likely label mistakes, judged by the chosen model (in a worker)."""
        name = self.current_model_name()
        entry = self.registry.entry(name) if name else None
        folder = self.folder_edit.text().strip()
        if entry is None or self.data_kind() != "folder" or not folder:
            self.banner.show_message("Choose a model and a folder of class folders to look for label mistakes in.",
                                     "info")
            return
        self.banner.clear_message()
        self._started()
        self._labels_slot.start(label_task, folder, str(entry.path), on_progress=self._progress,
                                on_done=self._labels_done, on_failed=self._failed)
        self.status_message.emit(f"Looking for label mistakes in {folder} with “{name}”…")
        self._update_buttons()

    def _labels_done(self, outcome: LabelOutcome) -> None:
        self.labels.set_outcome(outcome)
        self.labels_stack.setCurrentWidget(self.labels)
        self.details.setCurrentIndex(LABELS)
        self._update_buttons()
        self.status_message.emit(f"{plural(len(outcome.report.issues), 'likely label mistake')} in {outcome.folder}.")

    def _label_decisions(self) -> None:
        if self.labels.outcome is not None:
            self.label_decisions.emit(self.labels.outcome.folder, dict(self.labels.relabel), set(self.labels.excluded))

    def _started(self) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")

    def _progress(self, value: tuple[str, int, int]) -> None:
        what, done, total = value
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{what}: {done:,} of {total:,}")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{what}…")

    def _failed(self, failure) -> None:
        self.banner.show_message(failure.message, "error")
        self._update_buttons()

    # ---- results ----------------------------------------------------------------------------------
    def _done(self, outcome: EvalOutcome) -> None:
        self.outcome = outcome
        ev, f, req = outcome.evaluation, outcome.evaluation.figures, outcome.request
        self._update_buttons()
        notes = outcome.notes()
        if notes:
            self.banner.show_message("\n".join(notes), "info")
        if outcome.verdicts:
            self.verdict_banner.show_message("\n".join(f"• {v}" for v in outcome.verdicts), "warning")
        else:
            self.verdict_banner.clear_message()
        self.cards.set_figures(evaluation_cards(ev))
        from resnet_gui.core.evaluation.metrics import most_confused

        self.matrix_panel.set_matrix(f.class_names, f.confusion_matrix)
        self.pairs.set_pairs(most_confused(f.confusion_matrix, f.class_names), f.n - round(f.accuracy * f.n))
        self.per_class.set_classes(f.per_class)
        self.reliability.set_bins(f.reliability, f.ece)
        self.curves.set_curves(ev.curves, ev.operating_points, threshold_from(self.settings), ev.data)
        self.show_mistakes()
        self.status_message.emit(f"“{req.model_name}” on {req.data_words()}: {f.accuracy:.1%} accuracy "
                                 f"({f.n:,} images).")

    def show_mistakes(self) -> None:
        ev = self.outcome.evaluation
        self.matrix.select(None)
        n = len(ev.misclassified)
        title = (f"The {plural(min(n, MAX_GALLERY), 'mistake')} the model was surest about, most confident first "
                 "(click a cell of the matrix for others)." if n else "No mistakes. Click a cell to see its images.")
        self.gallery.show_cell(("mistakes",), title)
        self.session.load_thumbnails(("mistakes",), ev.misclassified)
        self.details.setCurrentIndex(GALLERY)

    def show_cell(self, true: int, predicted: int) -> None:
        if self.outcome is None:
            return
        f = self.outcome.evaluation.figures
        t, p = f.class_names[true], f.class_names[predicted]
        rows = [r for r in self.outcome.evaluation.rows if r["true"] == t and r["predicted"] == p]
        rows.sort(key=lambda r: -r["confidence"])
        shown = f" (the {MAX_GALLERY:,} most confident)" if len(rows) > MAX_GALLERY else ""
        what = f"{t}, recognised" if true == predicted else f"{t}, called {p}"
        self.gallery.show_cell((true, predicted), f"{what}: {plural(len(rows), 'image')}{shown}.")
        self.matrix.select((true, predicted))
        self.session.load_thumbnails((true, predicted), rows)
        self.details.setCurrentIndex(GALLERY)

    # ---- a class's own threshold -----------------------------------------------------------------------
    def save_operating_point(self, class_name: str, record: dict | None) -> None:
        """Store (or, with None, remove) a class's own threshold in the evaluated model, in a worker."""
        if self.outcome is None:
            return
        name = self.outcome.request.model_name

        def saved(entry) -> None:
            points = (entry.meta or {}).get("operating_points") or {}
            self.curves.set_operating_points(points)
            what = (f"“{class_name}” is now sure from {points[class_name]['threshold']:.1%}" if class_name in points
                    else f"“{class_name}” now uses the “not sure below” threshold alone")
            self.banner.show_message(f"{what} in the model “{name}” (Predict, sorting and the command line use "
                                     "it; Details and the model card show it).", "success")

        self.registry.run("set_operating_points", name, {class_name: record}, on_done=saved)

    # ---- export -----------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.outcome is None:
            return
        start = Path(self.settings.get("evaluate.export_dir", str(Path.home()))) / \
            f"{self.outcome.request.model_name}-evaluation.csv"
        out, _ = QFileDialog.getSaveFileName(self, "Export the evaluation", str(start), "CSV files (*.csv)")
        if out:
            self.export(out)

    def export(self, out: str) -> tuple[Path, ...] | None:
        """NAME.csv (one row per image), NAME-summary.csv, NAME-per-class.csv and NAME-confusion-matrix.png side
        by side (export.py); their paths, or None when nothing was saved (the banner says why)."""
        ev = self.outcome.evaluation
        title = f"{self.outcome.request.model_name} on {ev.data}: accuracy {ev.figures.accuracy:.1%}, " \
            f"{ev.figures.n:,} images"
        try:
            figure = self.matrix.export_image(title, theme.light_palette())   # for documents: dark on white
            written = export_evaluation(ev, Path(out), figure, threshold_from(self.settings))
        except ExportRefused as exc:
            self.banner.show_message(str(exc), "error")
            return None
        self.settings.set("evaluate.export_dir", str(Path(out).parent))
        csv_path, summary, per_class, png_path = written
        self.banner.show_message(f"Saved {plural(len(ev.rows), 'row')} to {csv_path}, the figures to "
                                 f"{summary.name} and {per_class.name}, and the confusion matrix to "
                                 f"{png_path.name}.", "success")
        return written
