"""Export… in the Models tab: choose the format (ONNX or TorchScript) and the file. Whether the ONNX packages
are installed is found out in a worker when the dialog opens (importing them takes seconds); when they are
missing the dialog names what to install, and TorchScript stays available where PyTorch is installed (the
classify-only edition has none: the dialog says to export to ONNX)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from ..common.workers import TaskSlot

FORMAT_WORDS = [("onnx", "ONNX (.onnx): onnxruntime, OpenCV, TensorRT, browsers…"),
                ("torchscript", "TorchScript (.pt): PyTorch and LibTorch (C++), no Python code needed")]
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
INSTALL = "pip install resnet-gui[export]"


def missing_task(report, stop) -> dict:
    from resnet_gui.core.export.exporter import FORMATS, missing_packages

    return {fmt: missing_packages(fmt) for fmt in FORMATS}


def install_sentence(missing: list[str], fmt: str = "onnx") -> str:
    if fmt == "torchscript":
        return ("Exporting to TorchScript needs PyTorch, which this classify-only edition leaves out: export to ONNX, "
                "which needs no PyTorch, or use the full edition.")
    names = " and ".join(missing)
    return (f"Exporting to ONNX needs {names}, which {'is' if len(missing) == 1 else 'are'} not installed. Install "
            f"{'it' if len(missing) == 1 else 'them'} with “{INSTALL}” (or “pip install onnx onnxruntime”) "
            "and open this dialog again, or export to TorchScript.")


class ExportDialog(QDialog):
    def __init__(self, model_name: str, start_folder: str, parent=None):
        super().__init__(parent)
        self.model_name = model_name
        self.missing: dict[str, list[str]] | None = None
        self.setWindowTitle(f"Export “{model_name}”")
        layout = QVBoxLayout(self)
        intro = QLabel("The exported file takes decoded, resized and centre-cropped RGB pixels (uint8) and returns "
                       "the class probabilities; the normalisation is inside. A model card (Markdown) is written "
                       "next to it.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.format_combo = QComboBox()
        for key, label in FORMAT_WORDS:
            self.format_combo.addItem(label, key)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        form.addRow("Format:", self.format_combo)
        row = QHBoxLayout()
        self._confirmed: str | None = None
        self.path_edit = QLineEdit(str(Path(start_folder) / self._file_name("onnx")))
        self.path_edit.textChanged.connect(lambda _t: self._validate())
        choose = QPushButton("Choose…")
        choose.clicked.connect(self.choose_file)
        row.addWidget(self.path_edit, 1)
        row.addWidget(choose)
        form.addRow("File:", row)
        layout.addLayout(form)
        self.note = QLabel("Checking which formats can be exported…")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 240)
        self._check = TaskSlot("export-check", self)
        self._check.start(missing_task, on_done=self._checked, on_failed=self._check_failed)
        self.finished.connect(lambda _r: self._check.cancel())
        self._validate()

    def _file_name(self, fmt: str) -> str:
        from resnet_gui.core.names import name_from

        return name_from(self.model_name) + SUFFIXES[fmt]

    def fmt(self) -> str:
        return self.format_combo.currentData()

    def output(self) -> str:
        return self.path_edit.text().strip()

    def choose_file(self) -> None:
        fmt = self.fmt()
        pattern = "ONNX models (*.onnx)" if fmt == "onnx" else "TorchScript models (*.pt)"
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.output(), f"{pattern};;All files (*)")
        if path:
            self.path_edit.setText(path)
            self._confirmed = path  # the file dialog has asked about replacing it

    def accept(self) -> None:
        """Export only once replacing an existing file (a path typed in, not chosen) has been agreed to."""
        from resnet_gui.core.export.exporter import card_path_for
        from resnet_gui.core.paths import output_problem

        out = self.output()
        target = Path(out).expanduser()
        if target.is_dir():
            self.note.setText(f"{out} is a folder; give the file's name too.")
            return
        problem = output_problem(target)  # the exporter checks again (and against the model's own file)
        if problem:
            self.note.setText(problem[:1].upper() + problem[1:] + ".")
            return
        if target.exists() and out != self._confirmed:
            card = card_path_for(target)
            also = f" and its model card {card.name}" if card.exists() else ""
            answer = QMessageBox.question(self, "Replace file", f"{target.name} already exists in {target.parent}. "
                                          f"Replace it{also}?", QMessageBox.StandardButton.Yes |
                                          QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return
        super().accept()

    def _format_changed(self, *_) -> None:
        """Keep the file name's suffix in step with the format."""
        path = Path(self.output()) if self.output() else None
        if path is not None and path.suffix.lower() in SUFFIXES.values():
            self.path_edit.setText(str(path.with_suffix(SUFFIXES[self.fmt()])))
        self._validate()

    def _checked(self, missing: dict) -> None:
        self.missing = missing
        self._validate()

    def _check_failed(self, failure) -> None:
        self.missing = {}
        self.note.setText(f"Could not check the export packages: {failure.message}")
        self._validate()

    def _validate(self) -> None:
        missing = (self.missing or {}).get(self.fmt(), [])
        if self.missing is None:
            self.note.setText("Checking which formats can be exported…")
        elif missing:
            self.note.setText(install_sentence(missing, self.fmt()))
        elif self.fmt() == "onnx":
            self.note.setText("ONNX export is available; the file is checked with onnxruntime after writing.")
        else:
            self.note.setText("TorchScript needs nothing beyond PyTorch; the file is checked with torch.jit.load.")
        self.export_button.setEnabled(self.missing is not None and not missing and bool(self.output()))
