"""*Sort into folders…* on the folder results: where the files would go (a count per folder) before anything is
written, copy or move, then the sort in a worker with a progress bar that can be stopped, and *Undo* after a move.
The rules (no overwrite, links not followed, sorted.csv, a full disk stops cleanly) are core/inference/sorting.py's.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from resnet_gui.text import plural

from ..common.failures import Failure
from ..common.widgets import Banner, plain_tip, show_progress
from ..common.workers import TaskSlot
from .answer import threshold_words

STATE_MEANING = {"_not_sure": "not sure: no class reaches its threshold", "_unfamiliar":
                 "unfamiliar: unlike the training images", "_unreadable": "could not be read"}


# ---- worker functions (run in Task threads) ------------------------------------------------------
def plan_task(report, stop, results: list, class_names: list[str], threshold: float):
    """The plan and the count per folder (10,000 files: about 60 ms, kept off the GUI thread)."""
    from resnet_gui.core.inference.sorting import folder_counts, plan_sort

    plan = plan_sort(results, class_names, threshold)
    return plan, folder_counts(plan)


def sort_task(report, stop, plan, out: str, move: bool):
    from resnet_gui.core.inference.sorting import sort_files
    from resnet_gui.core.progress import Progress

    return sort_files(plan, out, move=move, progress=Progress(lambda _w, done, total: report((done, total)), stop))


def undo_task(report, stop, out: str):
    from resnet_gui.core.inference.sorting import undo_sort
    from resnet_gui.core.progress import Progress

    return undo_sort(out, progress=Progress(lambda _w, done, total: report((done, total)), stop))


def default_output(folder: str | None) -> str:
    """A new folder beside the one classified: photos -> photos-sorted."""
    if not folder:
        return str(Path.home() / "sorted")
    path = Path(folder)
    return str(path.with_name(f"{path.name}-sorted"))


class SortDialog(QDialog):
    """Preview, then sort. `results` are the folder's predictions, `threshold` the reader's "not sure below"."""

    def __init__(self, results: list, class_names: list[str], threshold: float, folder: str | None, settings,
                 parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        self.settings = settings
        self._problem_shown = False
        self.plan: list | None = None      # made in a worker (plan_task): the preview fills when it is ready
        self.counts: dict = {}
        self.result = None
        self.undo_result = None
        self._slot = TaskSlot("sort", self)
        self._slot.busy_changed.connect(lambda _busy: self._check())  # Sort is enabled once the plan's task has ended
        layout = QVBoxLayout(self)
        intro = QLabel(f"{plural(len(results), 'file')} go into one folder per class for the sure answers, and "
                       f"into _not_sure, _unfamiliar and _unreadable for the rest (at “not sure below” "
                       f"{threshold_words(threshold)} and each class's own threshold). Names already taken get a "
                       "number; nothing is overwritten; links are not followed; every file is logged in sorted.csv.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        where = QHBoxLayout()
        where.addWidget(QLabel("Into:"))
        self.out_edit = QLineEdit(settings.get("predict.sort_folder") or default_output(folder))
        self.out_edit.setToolTip("The folder that receives the sorted files (made when missing)")
        self.out_edit.textChanged.connect(self._check)
        where.addWidget(self.out_edit, 1)
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        where.addWidget(choose)
        layout.addLayout(where)
        how = QHBoxLayout()
        self.copy_radio = QRadioButton("Copy (the folder stays as it is)")
        self.move_radio = QRadioButton("Move (Undo puts them back)")
        self.copy_radio.setChecked(True)
        group = QButtonGroup(self)
        for radio in (self.copy_radio, self.move_radio):
            group.addButton(radio)
            how.addWidget(radio)
            radio.toggled.connect(self._check)
        how.addStretch(1)
        layout.addLayout(how)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Folder", "Files", "What goes there"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.progress = QProgressBar()
        self.progress.hide()
        layout.addWidget(self.progress)
        self.message = Banner()
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Move the moved files back where they came from (from sorted.csv)")
        self.undo_button.clicked.connect(self.undo)
        self.undo_button.hide()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current file; what was done is logged in sorted.csv")
        self.stop_button.clicked.connect(self._slot.request_stop)
        self.stop_button.hide()
        self.sort_button = QPushButton()
        self.sort_button.setDefault(True)
        self.sort_button.clicked.connect(self.start)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for b in (self.undo_button, self.stop_button, self.sort_button, self.close_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.resize(640, 520)
        self._check()
        self._slot.start(plan_task, list(results), list(class_names), threshold, on_done=self._planned,
                         on_failed=self._failed)

    def _planned(self, value) -> None:
        self.plan, self.counts = value
        self._fill_preview()
        self._check()

    # ---- preview ------------------------------------------------------------------------------------
    def _fill_preview(self) -> None:
        special = [name for name in STATE_MEANING if name in self.counts]
        classes = sorted((name for name in self.counts if name not in STATE_MEANING), key=str.lower)
        self.table.setRowCount(len(classes) + len(special))
        for row, name in enumerate(classes + special):
            what = STATE_MEANING.get(name, "sure answers of this class")
            for col, text in enumerate((name, f"{self.counts[name]:,}", what)):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setToolTip(plain_tip(name))
                if col == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)

    def preview_rows(self) -> list[tuple[str, int]]:
        return [(self.table.item(r, 0).text(), int(self.table.item(r, 1).text().replace(",", "")))
                for r in range(self.table.rowCount())]

    def _choose(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Sort into folder", self.out_edit.text())
        if chosen:
            self.out_edit.setText(chosen)

    def _problem(self) -> str | None:
        text = self.out_edit.text().strip()
        if not text:
            return "Choose the folder to sort into."
        path = Path(text).expanduser()
        if not path.is_absolute():
            return "Give the whole path of the folder to sort into."
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder."
        return None

    def _check(self, *_) -> None:
        problem = self._problem()
        verb = "Move" if self.move_radio.isChecked() else "Copy"
        self.sort_button.setText(f"{verb} {plural(len(self.plan), 'file')}" if self.plan is not None else
                                 "Counting…")
        self.sort_button.setEnabled(problem is None and bool(self.plan) and not self._slot.busy()
                                    and self.result is None)  # one sort per dialog: a moved file is gone
        if problem:
            self.message.show_message(problem, "warning")
            self._problem_shown = True
        elif self._problem_shown:  # only the folder's problem goes away here, never a sort's outcome
            self.message.clear_message()
            self._problem_shown = False

    # ---- the sort ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._problem() or self._slot.busy() or not self.plan:
            return
        out = str(Path(self.out_edit.text().strip()).expanduser())
        self.settings.set("predict.sort_folder", out)
        self._running(True, "Sorting")
        self._slot.start(sort_task, self.plan, out, self.move_radio.isChecked(), on_progress=self._progress,
                         on_done=self._sorted, on_failed=self._failed)

    def undo(self) -> None:
        if self.result is None or self._slot.busy():
            return
        self._running(True, "Moving back")
        self._slot.start(undo_task, self.result.out, on_progress=self._progress, on_done=self._undone,
                         on_failed=self._failed)

    def _running(self, running: bool, what: str = "") -> None:
        self._what = what
        self.progress.setVisible(running)
        self.progress.setRange(0, 0)
        self.stop_button.setVisible(running)
        for w in (self.sort_button, self.out_edit, self.copy_radio, self.move_radio, self.undo_button):
            w.setEnabled(not running)
        self.close_button.setEnabled(not running)

    def _progress(self, value) -> None:
        done, total = value
        show_progress(self.progress, self._what, done, total)

    def _sorted(self, result) -> None:
        self.result = result
        self._running(False)
        self.sort_button.setEnabled(False)
        verb = "Moved" if result.move else "Copied"
        text = f"{verb} {plural(result.written, 'file')} of {result.total:,} into {result.out}"
        text += f" ({plural(result.renamed, 'file')} got a number: the name was taken)." if result.renamed else "."
        if result.skipped:
            text += f" {plural(len(result.skipped), 'symbolic link')} not followed."
        if result.failed:
            text += f" {plural(len(result.failed), 'file')} could not be read, for example {result.failed[0]}."
        if result.cancelled:
            text = "Stopped. " + text
        kind = "success"
        if result.stopped:
            text = f"Stopped: {result.stopped} {text} Nothing was half-copied and no file was lost."
            kind = "error"
        elif result.failed or result.cancelled:
            kind = "warning"
        self.message.show_message(text + f" The log is {os.path.join(result.out, 'sorted.csv')}.", kind)
        self.undo_button.setVisible(result.move and result.written > 0)

    def _undone(self, result) -> None:
        self.undo_result = result
        self._running(False)
        self.sort_button.setEnabled(False)
        self.undo_button.hide()
        text = f"Moved {plural(result.moved_back, 'file')} back."
        if result.kept:
            text += f" {plural(len(result.kept), 'file')} stayed: {result.kept[0]}."
        if result.stopped:
            text += f" Stopped: {result.stopped}"
        self.message.show_message(text, "error" if result.stopped else "warning" if result.kept else "success")

    def _failed(self, failure: Failure) -> None:
        self._running(False)
        self._check()
        self.message.show_message(failure.message, "error")

    def busy(self) -> bool:
        return self._slot.busy()

    def ready(self) -> bool:
        """The preview is there (the plan was made)."""
        return self.plan is not None

    def reject(self) -> None:
        if self._slot.busy():  # closing while files move: stop after the current one, the result still arrives
            self._slot.request_stop()
            return
        super().reject()
