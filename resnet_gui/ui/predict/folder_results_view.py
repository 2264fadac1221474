"""The folder-results view of the Predict tab: a sortable table (thumbnail, file, class, confidence, status)
that fills while a folder runs, a filter by status (sure, not sure, unfamiliar, errors), the files that
failed, which model made the results, CSV export, and, for a folder laid out as folder/<class>/… with the
model's classes, the accuracy and a way to evaluate it properly. How one answer looks as a row, and the table
itself: results_table.py."""
from __future__ import annotations

import gc
import os
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import plural

from ..common.widgets import Banner, ElidedLabel
from .answer import DEFAULT_THRESHOLD, ERROR, STATES, SURE, UNFAMILIAR, UNSURE
from .results_table import (
    CONFIDENCE_COLUMN,
    FILE_COLUMN,
    PATH_ROLE,
    STATUS_COLUMN,
    STATUS_ROLE,
    result_row,
    results_model,
    results_table,
    set_status,
)
from .session import TOP_K, FolderDone, FolderLabels, FolderRows

FILTERS = [("", "All images"), (SURE, "Sure"), (UNSURE, "Not sure"), (UNFAMILIAR, "Unfamiliar"), (ERROR, "Errors")]
MAX_LISTED_ERRORS = 5
COUNTS_EVERY_S = 0.25
INSERT_BUDGET_S = 0.025  # GUI time spent adding rows per event-loop turn; the rest waits for the next turn


class FolderResultsView(QWidget):
    status_message = Signal(str)
    cancel_requested = Signal()
    rerun_requested = Signal()
    image_activated = Signal(str)   # a row was double-clicked: show that image
    evaluate_requested = Signal(str)  # evaluate this folder (laid out by class) in the Evaluate tab

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.results: list = []
        self.folder: str | None = None
        self.model_name: str | None = None   # the model that made the results on screen
        self.running = False
        self.threshold = DEFAULT_THRESHOLD
        self.labels: FolderLabels | None = None   # true classes, when the folder is laid out by class
        self.familiarity_limit: float | None = None  # the model's familiarity threshold, for the tooltips
        # Rows arrive about 20 times a second; they are added a slice at a time (INSERT_BUDGET_S), so that a
        # fast worker never stalls the window, and everything shown per update is counted as rows come in.
        self._queue: deque = deque()              # (Prediction, thumbnail) received, not in the table yet
        self._progress = (0, 0)                   # (done, total) as the worker last said
        self._pending_finish: FolderDone | None = None   # the run ended while rows were still queued
        self._errors: list = []                   # the failed predictions among self.results
        self._right = self._labelled = 0          # accuracy so far, when the folder is laid out by class
        self._counts = dict.fromkeys(STATES, 0)   # rows per state at the current threshold (kept as rows come)
        self._counts_shown = 0.0                  # when the filter's counts were last shown
        self._chosen_model: str | None = None     # the model chosen in the tab (set_current_model)
        self._drain_timer = QTimer(self)
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self._drain)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        tools = QHBoxLayout()
        self.folder_label = ElidedLabel("Open a folder to classify all its images.", mode=Qt.TextElideMode.ElideMiddle)
        self.folder_progress = QProgressBar()
        self.folder_progress.setMaximumWidth(220)
        self.folder_progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.hide()
        self.lowest_button = QPushButton("Lowest confidence first")
        self.lowest_button.setToolTip("Sort so that the images the model is least sure about come first")
        self.lowest_button.clicked.connect(
            lambda: self.table.sortByColumn(CONFIDENCE_COLUMN, Qt.SortOrder.AscendingOrder))
        self.filter_combo = QComboBox()
        for key, label in FILTERS:
            self.filter_combo.addItem(label, key)
        self.filter_combo.setToolTip("Show only the images in one state")
        self.filter_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # counts are added
        self.filter_combo.currentIndexChanged.connect(self._filter_changed)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save every result as a CSV file (Ctrl+E)")
        self.export_button.clicked.connect(self.export_csv)
        self.sort_button = QPushButton("Sort into folders…")
        self.sort_button.setToolTip("Copy or move the files into one folder per class (and not sure, unfamiliar, "
                                    "unreadable), with a preview of the counts first")
        self.sort_button.clicked.connect(self.open_sort_dialog)
        tools.addWidget(self.folder_label, 1)
        for w in (self.folder_progress, self.cancel_button, self.filter_combo, self.lowest_button, self.sort_button,
                  self.export_button):
            tools.addWidget(w)
        layout.addLayout(tools)
        self.model_note = Banner()
        layout.addWidget(self.model_note)
        self.folder_errors = Banner()
        layout.addWidget(self.folder_errors)
        self.accuracy_note = Banner()
        layout.addWidget(self.accuracy_note)
        self.table_model, self.proxy = results_model()
        self.table = results_table(self.proxy)
        self.table.doubleClicked.connect(self._row_activated)
        layout.addWidget(self.table, 1)
        self._update_buttons()

    # ---- a run ------------------------------------------------------------------------------------
    def waiting(self, folder: str, message: str) -> None:
        self.folder_label.setText(f"{folder}: {message}")

    def start(self, folder: str, model_name: str) -> None:
        self.folder, self.model_name, self.running = folder, model_name, True
        self.table_model.removeRows(0, self.table_model.rowCount())
        self.results = []
        self.labels = None
        self._queue.clear()
        self._drain_timer.stop()
        self._pending_finish = None
        self._progress = (0, 0)
        self._errors = []
        self._right = self._labelled = 0
        self._counts = dict.fromkeys(STATES, 0)
        self._show_counts()
        self.folder_errors.clear_message()
        self.model_note.clear_message()
        self.accuracy_note.clear_message()
        self.folder_progress.setRange(0, 0)
        self.folder_progress.show()
        self.cancel_button.show()
        self.folder_label.setText(f"{folder}: classifying with “{model_name}”…")
        self._update_buttons()
        gc.freeze()  # what exists now (PyTorch, the widgets) lives on: see _drain

    def add_rows(self, rows: FolderRows) -> None:
        self._queue.extend(rows.rows)
        self._progress = (rows.done, rows.total)
        self._drain()

    def pending_rows(self) -> int:
        """Rows received from the worker that are not in the table yet."""
        return len(self._queue)

    def _drain(self) -> None:
        """Add queued rows for at most INSERT_BUDGET_S, then show the counts once; more on the next turn."""
        errors_before = len(self._errors)
        deadline = time.perf_counter() + INSERT_BUDGET_S
        while self._queue:
            self._add_row(*self._queue.popleft())
            if time.perf_counter() > deadline:
                break
        if self._queue:
            self._drain_timer.start()
        # The rows stay as long as the table: out of the garbage collector's full scans. A full scan of the
        # whole app (PyTorch, Qt wrappers, the rows) takes ~0.5 s on 2 cores and holds the GIL, so without
        # this the window froze that long once or twice per 10,000 rows. Freezing is cheap (lists spliced);
        # frozen objects are still freed by reference counting.
        gc.freeze()
        if self.running:
            done, total = self._progress
            self.folder_progress.setRange(0, max(total, 1))
            self.folder_progress.setValue(done)
            self.folder_label.setText(f"{self.folder}: {done:,} of {plural(total, 'image')}")
        if len(self._errors) != errors_before:
            self._show_errors()
        if not self._queue or time.perf_counter() - self._counts_shown > COUNTS_EVERY_S:
            self._show_counts()
        if not self._queue and self._pending_finish is not None:
            done, self._pending_finish = self._pending_finish, None
            self.finish(done)
            return
        self._show_accuracy()
        self._update_buttons()

    def _show_errors(self) -> None:
        errors = self._errors
        listed = "\n".join(p.error for p in errors[:MAX_LISTED_ERRORS])
        more = f"\n… and {len(errors) - MAX_LISTED_ERRORS:,} more." if len(errors) > MAX_LISTED_ERRORS else ""
        self.folder_errors.show_message(
            f"{plural(len(errors), 'file')} could not be classified:\n{listed}{more}", "error")

    def finish(self, done: FolderDone) -> None:
        if self._queue:  # the last rows are still being added: finish once they are in
            self._pending_finish = done
            return
        self.running = False
        self.folder_progress.hide()
        self.cancel_button.hide()
        ok = sum(p.ok for p in self.results)
        bad = len(self.results) - ok
        if done.total == 0 and not done.cancelled:
            text = f"{done.folder}: no images found (JPEG, PNG, BMP, GIF, TIFF or WebP)."
        else:
            state = "cancelled after" if done.cancelled else "done,"
            failed = f", {bad:,} failed" if bad else ""
            text = f"{done.folder}: {state} {ok:,} classified by “{done.model_name}”{failed}."
        self.folder_label.setText(text)
        self.status_message.emit(text)
        self._show_accuracy()
        self._update_buttons()
        self.set_current_model(self._chosen_model)

    def fail(self, message: str) -> None:
        self.running = False
        self.folder_progress.hide()
        self.cancel_button.hide()
        self.folder_errors.show_message(message, "error")
        self.folder_label.setText(f"{self.folder or 'The folder'}: not classified.")
        self._update_buttons()

    def set_current_model(self, name: str | None) -> None:
        """Say so when the results on screen were made by another model than the chosen one."""
        self._chosen_model = name
        if self.results and not self.running and self.model_name and name and name != self.model_name:
            self.model_note.show_message(f"These results were made by “{self.model_name}”, not by the chosen "
                                         f"model “{name}”.", "info", [(f"Run again with “{name}”",
                                                                         self.rerun_requested.emit)])
        else:
            self.model_note.clear_message()

    # ---- rows -------------------------------------------------------------------------------------
    def _add_row(self, pred, thumb) -> None:
        self.results.append(pred)
        if not pred.ok:
            self._errors.append(pred)
        self._count_accuracy(pred)
        row = result_row(pred, thumb, len(self.results), self.palette().color(QPalette.ColorRole.PlaceholderText))
        self._counts[set_status(row, pred, self.threshold, self.familiarity_limit)] += 1
        self.table_model.appendRow(row)

    def set_threshold(self, threshold: float) -> None:
        """A new "not sure below" threshold: every row's status is read again (no new prediction)."""
        self.threshold = threshold
        self._counts = dict.fromkeys(STATES, 0)
        for row, pred in enumerate(self.results):
            items = [self.table_model.item(row, column) for column in range(self.table_model.columnCount())]
            self._counts[set_status(items, pred, self.threshold, self.familiarity_limit)] += 1
        self._show_counts()

    def row_status(self, row: int) -> str:
        return self.proxy.index(row, STATUS_COLUMN).data(STATUS_ROLE)

    def _filter_changed(self, *_) -> None:
        key = self.filter_combo.currentData()
        self.proxy.setFilterRegularExpression(f"^{key}$" if key else "")

    def status_counts(self) -> dict[str, int]:
        """Rows per state at the current threshold (kept up to date as rows come and the threshold moves)."""
        return dict(self._counts)

    def _show_counts(self) -> None:
        """The filter's entries say how many rows each shows: "Sure (812)" (while rows pour in, a few times a
        second: the combo box resizes with its text, which re-lays out the tool bar)."""
        self._counts_shown = time.perf_counter()
        total = sum(self._counts.values())
        for i, (key, label) in enumerate(FILTERS):
            text = f"{label} ({self._counts[key] if key else total:,})" if total else label
            if self.filter_combo.itemText(i) != text:
                self.filter_combo.setItemText(i, text)

    # ---- a folder laid out by class -----------------------------------------------------------------
    def set_labels(self, labels: FolderLabels) -> None:
        self.labels = labels
        self._right = self._labelled = 0
        for pred in self.results:
            self._count_accuracy(pred)
        self._show_accuracy()

    def _count_accuracy(self, pred) -> None:
        truth = self.labels.labels.get(pred.path) if self.labels is not None and pred.ok else None
        if truth is not None:
            self._labelled += 1
            self._right += pred.label == truth

    def accuracy(self) -> tuple[int, int] | None:
        """(right, labelled) over the classified files whose folder names a class of the model."""
        if self.labels is None:
            return None
        return self._right, self._labelled

    def _show_accuracy(self) -> None:
        counts = self.accuracy()
        if not counts or not counts[1]:
            self.accuracy_note.clear_message()
            return
        right, n = counts
        other = sum(self.labels.unknown.values())
        left_out = f" ({plural(other, 'image')} in other folders not counted)" if other else ""
        so_far = " so far" if self.running else ""
        text = (f"The sub-folders are named after this model's classes: {right / n:.1%} right{so_far} ({right:,} of "
                f"{plural(n, 'image')}){left_out}.")
        note = self.accuracy_note
        if note.isVisibleTo(self) and note.kind() == "info" and note.buttons():
            if note.text() != text:
                note.label.setText(text)  # only the figures change: keep the button (no new widgets per update)
            return
        note.show_message(text, "info",
                          [("Evaluate this folder", lambda: self.evaluate_requested.emit(self.folder or ""))])

    def row_path(self, row: int) -> str | None:
        return self.proxy.index(row, FILE_COLUMN).data(PATH_ROLE)

    def _row_activated(self, index) -> None:
        path = self.row_path(index.row())
        if path:
            self.image_activated.emit(path)

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(bool(self.results) and not self.running)
        self.sort_button.setEnabled(bool(self.results) and not self.running)
        self.lowest_button.setEnabled(bool(self.results))

    # ---- sort -------------------------------------------------------------------------------------
    def sort_dialog(self):
        """The *Sort into folders…* dialog for the results on screen, at the current threshold (not shown)."""
        from .sort_dialog import SortDialog

        labels = sorted({p.label for p in self.results if p.ok}, key=str.lower)
        return SortDialog(self.results, labels, self.threshold, self.folder, self.settings, self)

    def open_sort_dialog(self) -> None:
        if self.results and not self.running:
            dialog = self.sort_dialog()
            dialog.exec()
            dialog.deleteLater()

    # ---- export -----------------------------------------------------------------------------------
    def export_csv(self) -> None:
        if not self.results:
            return
        shown_only = False
        shown = self.proxy.rowCount()
        if shown < len(self.results):
            shown_only = self.ask_export_scope(shown)
            if shown_only is None:
                return
        # never into the folder being classified: the last export folder, else the home folder
        folder = self.settings.get("predict.export_dir") or str(Path.home())
        out, _ = QFileDialog.getSaveFileName(self, "Export results", os.path.join(folder, "predictions.csv"),
                                             "CSV files (*.csv)")
        if out:
            self.settings.set("predict.export_dir", os.path.dirname(out))
            self.write_csv(out, shown_only=shown_only)

    def ask_export_scope(self, shown: int) -> bool | None:
        """A filter hides rows: export only those shown (True), all (False), or nothing (None)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Export results",
                          f"The filter shows {plural(shown, 'row')} of {len(self.results):,}. Export which?",
                          parent=self)
        only = box.addButton(f"The {shown:,} shown", QMessageBox.ButtonRole.AcceptRole)
        every = box.addButton(f"All {len(self.results):,}", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(only)
        box.exec()
        return True if box.clickedButton() is only else False if box.clickedButton() is every else None

    def shown_results(self) -> list:
        """The predictions of the rows the filter shows, in the table's order."""
        by_path = {p.path: p for p in self.results}
        return [by_path[self.row_path(r)] for r in range(self.proxy.rowCount()) if self.row_path(r) in by_path]

    def write_csv(self, out: str, shown_only: bool = False) -> None:
        from resnet_gui.core.errors import ResnetGuiError, user_message
        from resnet_gui.core.inference.prediction import write_csv
        from resnet_gui.core.paths import check_output

        rows = self.shown_results() if shown_only else self.results
        try:  # refuses the app's models and runs, and every image of the folder (shown or not)
            check_output(out, reading=[p.path for p in self.results if p.path])
            write_csv(rows, out, top_k=TOP_K, threshold=self.threshold)
        except (OSError, ResnetGuiError) as exc:
            self.folder_errors.show_message(f"The results could not be saved. {user_message(exc)}", "error")
            return
        self.status_message.emit(f"Exported {plural(len(rows), 'result')} to {out}.")
