"""Longer jobs on one model of the Models tab, each in a worker, with a line that shows it is working:
export to ONNX or TorchScript (cannot be cancelled: a busy indicator) and adding familiarity data from a
folder of class folders (progress and Cancel). How a job ended is a sentence for the tab's banner."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from resnet_gui.text import plural

from ..common.widgets import show_progress
from ..common.workers import TaskSlot


def export_task(report, stop, model_path: str, fmt: str, output: str):
    from resnet_gui.core.export.exporter import export_model

    return export_model(model_path, fmt, output)


def familiarity_task(report, stop, name: str, folder: str, calibrate: bool = False) -> dict:
    from resnet_gui.core.evaluation.fit_imported import add_familiarity
    from resnet_gui.core.models.registry import Registry
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    return add_familiarity(Registry().get(name).path, folder, progress=progress, calibrate=calibrate)


def export_sentence(name: str, result) -> str:
    from resnet_gui.core.export.exporter import describe_input

    fmt = "ONNX" if result.fmt == "onnx" else "TorchScript"
    checked = (f", checked with {result.checked_with} (largest difference from {result.reference} "
               f"{result.max_abs_diff:.1e})"
               if result.checked_with and result.max_abs_diff is not None
               else " (not checked: onnxruntime is not installed)")
    return (f"Exported “{name}” as {fmt} to {result.path}{checked}. Model card: {result.card_path}.\n"
            f"{describe_input(result)}")


class ModelJobs(QWidget):
    """A busy line (hidden when idle) and how its jobs end: done, failed, or cancelled by its Cancel button."""

    done = Signal(str, list)             # (sentence, [(button text, callback)])
    failed = Signal(object)              # a Failure
    cancelled = Signal()
    changed = Signal()                   # a job changed a model file: list the registry again
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(320)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        self._slot = TaskSlot("model-job", self)
        self._slot.busy_changed.connect(self._busy)
        self.hide()

    def busy(self) -> bool:
        return self._slot.busy()

    def _busy(self, busy: bool) -> None:
        self.setVisible(busy)
        self.busy_changed.emit(busy)

    def _start(self, text: str, cancellable: bool, fn: Callable, *args, on_done: Callable) -> None:
        self.label.setText(text)
        self.progress.setRange(0, 0)  # busy until a job reports progress
        self.progress.setFormat("")
        self.cancel_button.setVisible(cancellable)
        self._slot.start(fn, *args, on_progress=self._progress, on_done=on_done, on_failed=self.failed.emit)

    def _progress(self, value) -> None:
        show_progress(self.progress, *value)

    def cancel(self) -> None:
        self._slot.cancel()
        self.cancelled.emit()

    # ---- export -----------------------------------------------------------------------------------
    def export(self, name: str, model_path: str, fmt: str, output: str) -> None:
        words = "ONNX" if fmt == "onnx" else "TorchScript"

        def done(result):
            folder = str(Path(result.path).parent)
            self.done.emit(export_sentence(name, result),
                           [("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder)))])

        self._start(f"Exporting “{name}” to {words} and checking the file… (this cannot be cancelled)", False,
                    export_task, model_path, fmt, output, on_done=done)

    # ---- familiarity ------------------------------------------------------------------------------
    def add_familiarity(self, name: str, folder: str, *, calibrate: bool = False) -> None:
        def done(summary: dict):
            images = summary.get("images")
            text = (f"“{name}” now knows what its classes look like ({plural(int(images), 'image')} of {folder}): "
                    "Predict can say when an image is unlike them." if isinstance(images, int)
                    else f"Added familiarity data to “{name}”.")
            if summary.get("calibrated"):
                text += " Its confidences are now calibrated too."
            int8 = summary.get("int8") or {}
            if int8.get("kept"):
                text += (f" Its int8 version agreed with fp32 on {int8.get('agreement', 0):.1%} of "
                         f"{plural(int(int8.get('images') or 0), 'held-out image')} and is used from now on.")
            elif int8:
                text += f" No int8 version was kept ({int8.get('reason') or 'it did not pass verification'})."
            unknown = summary.get("unknown_classes") or {}
            if unknown:
                text += f" Folders that are not its classes were left out: {', '.join(list(unknown)[:5])}."
            self.done.emit(text, [])
            self.changed.emit()

        self._start(f"Reading the images of {folder} to describe what “{name}” knows…", True, familiarity_task,
                    name, folder, calibrate, on_done=done)
