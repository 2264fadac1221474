"""Dialogs of the Models tab: a new name (checked as it is typed), class names (on import or later),
preprocessing, and the model details summary (what the model knows, how it was trained, its figures, its file)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.models.archs import ARCHS
from resnet_gui.text import decimal_size, plural, sentence

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
SHOWN_CLASSES = 30
RENAME_WIDTH = 460   # the rename dialog: its name field and a three-line hint at most
RECIPE_WORDS = {"cifar10": "ResNet-18 on CIFAR-10 from scratch", "finetune": "fine-tuned from ImageNet weights",
                "scratch": "trained from scratch on a folder"}


def name_problem(text: str, old: str, taken) -> str | None:
    """Why `text` cannot be the new name of model `old` (a sentence), or None. `taken`: the names in use."""
    from resnet_gui.core.names import name_fault, validate_name

    if not text.strip():
        return "Type a name."
    fault = name_fault(text)
    if fault is not None:  # the whole name quoted (shortened past 60 characters), then what is wrong with it
        shown = text.strip() if len(text.strip()) <= 60 else text.strip()[:59] + "…"
        return sentence(f"“{shown}” {fault}")
    name = validate_name(text)
    if name != old and name.lower() in {t.lower() for t in taken}:
        return f"A model named “{name}” already exists."
    return None


class RenameDialog(QDialog):
    """A new name for a model, checked as it is typed: OK is enabled only for a name that will be accepted."""

    def __init__(self, old: str, taken, text: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Rename model")
        self.old, self.taken = old, list(taken)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"New name for “{old}”:"))
        self.edit = QLineEdit(text if text is not None else old)
        self.edit.selectAll()
        layout.addWidget(self.edit)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._check)
        self.setMinimumWidth(RENAME_WIDTH)
        self._check(self.edit.text())
        self.resize(max(self.sizeHint().width(), RENAME_WIDTH), self.sizeHint().height())

    def _check(self, text: str) -> None:
        problem = name_problem(text, self.old, self.taken)
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow (never shrink below) to the height the word-wrapped hint needs at the dialog's width: a window's
        layout does not follow its labels' height-for-width, so a three-line hint ran under the buttons."""
        layout = self.layout()
        layout.activate()
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else layout.sizeHint().height()
        self.setMinimumHeight(needed)
        if self.height() < needed:
            self.resize(self.width(), needed)

    def name(self) -> str:
        return self.edit.text().strip()


class ClassNamesDialog(QDialog):
    """Ask for the class names of a model (one per line, or from a text file)."""

    def __init__(self, info: dict, parent=None, intro: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Class names")
        self.num_classes = info["num_classes"]
        layout = QVBoxLayout(self)
        if intro is None:
            classes = plural(self.num_classes, "class", "classes")
            intro = (f"{Path(info['path']).name} is a {info['arch']} with {classes}, but the file does not say what "
                     "they are called. Enter one name per line, in the order the model was trained with (usually "
                     "the class folders in alphabetical order).")
            if not info.get("generic", True):
                intro += "\nThe names below are a guess (the CIFAR-10 order); correct them if needed."
        label = QLabel(intro)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.edit = QPlainTextEdit("\n".join(info["class_names"]))
        layout.addWidget(self.edit)
        self.count = QLabel()
        layout.addWidget(self.count)
        load = QPushButton("Load from a text file…")
        load.clicked.connect(self._load)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(load, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout.addWidget(buttons)
        self.edit.textChanged.connect(self._validate)
        self._validate()
        self.resize(460, 420)

    def names(self) -> list[str]:
        return [line.strip() for line in self.edit.toPlainText().splitlines() if line.strip()]

    def _validate(self) -> None:
        names = self.names()
        unique = len(set(names)) == len(names)
        self.count.setText(f"{len(names)} of {self.num_classes} names" + ("" if unique else "; names must be unique")
                           + ".")
        self.ok.setEnabled(len(names) == self.num_classes and unique)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Class names file", str(Path.home()), "Text files (*.txt);;All (*)")
        if path:
            try:
                self.edit.setPlainText(Path(path).read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError) as exc:
                QMessageBox.warning(self, "Class names", f"{path} could not be read: {exc}.")


class PreprocessDialog(QDialog):
    """The preprocessing prediction uses: resize the shorter side, center-crop, normalise."""

    def __init__(self, preprocess: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preprocessing")
        layout = QVBoxLayout(self)
        intro = QLabel("Prediction resizes the image's shorter side, crops the centre square and normalises each "
                       "colour channel. Use the values the model was trained with.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.input_size = QSpinBox(minimum=8, maximum=2048, value=int(preprocess["input_size"]))
        resize = int(preprocess.get("resize", preprocess["input_size"]))
        self.resize_spin = QSpinBox(minimum=8, maximum=4096, value=resize)
        self.interpolation = QComboBox()
        self.interpolation.addItems(INTERPOLATIONS)
        self.interpolation.setCurrentText(preprocess.get("interpolation", "bilinear"))
        form.addRow("Input size (px):", self.input_size)
        form.addRow("Resize shorter side to (px):", self.resize_spin)
        form.addRow("Interpolation:", self.interpolation)
        self.mean = [QDoubleSpinBox(decimals=4, minimum=0.0, maximum=1.0, singleStep=0.01, value=float(v))
                     for v in preprocess["mean"]]
        self.std = [QDoubleSpinBox(decimals=4, minimum=0.001, maximum=1.0, singleStep=0.01, value=float(v))
                    for v in preprocess["std"]]
        for label, spins in (("Mean (R, G, B):", self.mean), ("Standard deviation (R, G, B):", self.std)):
            row = QHBoxLayout()
            for spin in spins:
                row.addWidget(spin)
            form.addRow(label, row)
        layout.addLayout(form)
        self.problem = QLabel("")
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout.addWidget(buttons)
        for spin in (self.input_size, self.resize_spin):
            spin.valueChanged.connect(self._validate)
        self._validate()

    def _validate(self) -> None:
        ok = self.resize_spin.value() >= self.input_size.value()
        self.problem.setText("" if ok else "The resize must be at least the input size.")
        self.ok.setEnabled(ok)

    def values(self) -> dict:
        return {"input_size": self.input_size.value(), "resize": self.resize_spin.value(),
                "mean": [s.value() for s in self.mean], "std": [s.value() for s in self.std],
                "interpolation": self.interpolation.currentText()}


# ---- the summary --------------------------------------------------------------------------------------
def _pct(value) -> str | None:
    return f"{value:.1%}" if isinstance(value, (int, float)) else None


def _number(value, fmt: str) -> str | None:
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def calibration_words(calibration) -> str:
    """The details view's sentence on calibration ("uncalibrated" when the file has none)."""
    if not isinstance(calibration, dict) or _number(calibration.get("temperature"), ".2f") is None:
        return "uncalibrated: its confidences are the network's raw ones (often too sure)"
    text = f"calibrated (temperature {_number(calibration['temperature'], '.2f')})"
    before, after = _number(calibration.get("ece_before"), ".3f"), _number(calibration.get("ece_after"), ".3f")
    if before and after:
        text += f"; calibration error {before} before, {after} after"
    if calibration.get("fitted_on"):
        text += f"; fitted on {calibration['fitted_on']}"
    return text


def familiarity_words(familiarity) -> str:
    """The details view's sentence on familiarity data: whether and how well the model can flag unfamiliar images
    (core/inference/outliers.py measures it when the data is fitted), and what it was fitted on."""
    from resnet_gui.core.inference.outliers import can_flag, measured_words

    words = can_flag(familiarity)
    if not isinstance(familiarity, dict):
        return (f"{words}: it has no familiarity data, so it cannot tell when an image is unlike what it was trained "
                "on (Models tab: Add familiarity data…)")
    measured = measured_words(familiarity.get("measured"))
    parts = [measured] if measured else ["fitted before the app measured how well it works (Add familiarity "
                                         "data… fits and measures it again)"]
    if familiarity.get("input_statistics"):
        parts.append("it also compares colour, brightness, contrast and detail with its training images")
    if _number(familiarity.get("threshold"), ".3f"):
        parts.append(f"threshold {_number(familiarity['threshold'], '.3f')}")
    if familiarity.get("fitted_on"):
        parts.append(f"fitted on {familiarity['fitted_on']}")
    return f"{words} ({'; '.join(parts)})"


def int8_words(record) -> str:
    """The details view's sentence on the int8 version (core/inference/int8.py)."""
    from resnet_gui.core.inference.int8 import describe

    if not isinstance(record, dict):
        return ("none: it classifies in fp32 (Add familiarity data… builds and verifies an int8 version, about 3× "
                "faster on the CPU)")
    if record.get("kept") is True:
        return f"kept and used on the CPU: {describe(record)}"
    return f"not kept, so it classifies in fp32: {record.get('reason') or 'it did not pass verification'}"


def thresholds_words(points, class_names: list[str]) -> str:
    """The details view's lines on the classes' own thresholds (Evaluate tab: Thresholds, or models edit)."""
    from resnet_gui.core.models.operating_points import clean, describe

    points = clean(points, class_names)
    if not points:
        return ("none: every class is sure from the “not sure below” threshold (Evaluate tab → Thresholds sets one "
                "per class)")
    return "\n".join(describe(name, points[name]) for name in class_names if name in points)


def summary_sections(entry) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(label, value)]) describing a registry entry in words; empty values left out."""
    meta = entry.meta or {}
    names = list(meta.get("class_names", []))
    pre = meta.get("preprocess") or {}
    metrics = meta.get("metrics") or {}
    config = meta.get("train_config") or {}
    dataset = meta.get("dataset") or {}
    notes = meta.get("notes") or {}
    arch = meta.get("arch", "")
    shown = ", ".join(names[:SHOWN_CLASSES]) + (f", … ({len(names) - SHOWN_CLASSES:,} more)"
                                                 if len(names) > SHOWN_CLASSES else "")
    knows = [("Classes", f"{plural(len(names), 'class', 'classes')}: {shown}"),
             ("Architecture", f"{arch} ({ARCHS[arch].summary})" if arch in ARCHS else arch)]
    if pre:
        knows.append(("Input", f"{pre.get('input_size')}×{pre.get('input_size')} px: the shorter side resized to "
                               f"{pre.get('resize')} px ({pre.get('interpolation', 'bilinear')}), centre crop"))
        knows.append(("Normalisation", "mean " + ", ".join(f"{v:.3f}" for v in pre.get("mean", [])) + "; std "
                      + ", ".join(f"{v:.3f}" for v in pre.get("std", []))))
    trained: list[tuple[str, str]] = []
    if dataset:
        counts = [f"{dataset[k]:,} {label}" for k, label in (("train_images", "training"),
                                                            ("val_images", "validation"), ("test_images", "test"))
                  if isinstance(dataset.get(k), int)]
        trained.append(("Dataset", str(dataset.get("name") or dataset.get("description") or "")
                        + (f" ({', '.join(counts)} images)" if counts else "")))
        if dataset.get("path"):
            trained.append(("Images in", str(dataset["path"])))
        if dataset.get("val_source") or dataset.get("split"):
            trained.append(("Validation", str(dataset.get("val_source") or dataset.get("split"))))
    if config:
        epochs = config.get("epochs")
        recipe = RECIPE_WORDS.get(config.get("recipe"), str(config.get("recipe", "")))
        trained.append(("Recipe", f"{recipe}, {plural(int(epochs), 'epoch')}" if epochs else recipe))
        trained.append(("Optimisation", f"{config.get('optimizer', '')} at learning rate {config.get('lr')}, "
                        f"batch size {config.get('batch_size')}, {config.get('schedule', '')} schedule, "
                        f"label smoothing {config.get('label_smoothing')}"))
        if config.get("pretrained"):
            trained.append(("Started from", "ImageNet weights"))
    elif notes.get("source_format"):
        trained.append(("Imported from", f"{notes.get('source_format')} ({notes.get('source', '')})".strip()))
    figures: list[tuple[str, str]] = []
    for label, value in (("Validation accuracy", _pct(metrics.get("val_accuracy"))),
                         ("Training accuracy", _pct(metrics.get("train_accuracy")))):
        if value:
            figures.append((label, value))
    test = metrics.get("test_accuracy", notes.get("held_out_test_accuracy"))
    if isinstance(test, (int, float)):
        images = metrics.get("test_images") or dataset.get("test_images")
        figures.append(("Held-out test accuracy", f"{test:.1%}" + (f" on {images:,} images training never saw"
                                                                   if isinstance(images, int) else "")))
    if isinstance(metrics.get("epoch"), int):
        figures.append(("Best epoch", f"{metrics['epoch']} of {metrics.get('epochs', '?')}"))
    for label, key in (("Balanced accuracy", "balanced_accuracy"), ("Largest class share", "majority_baseline")):
        if _pct(metrics.get(key)):
            figures.append((label, _pct(metrics[key])))
    figures.append(("Confidence", calibration_words(meta.get("calibration"))))
    figures.append(("Unfamiliar images", familiarity_words(meta.get("familiarity"))))
    figures.append(("int8 version", int8_words(meta.get("int8"))))
    figures.append(("Own thresholds", thresholds_words(meta.get("operating_points"), names)))
    created = str(meta.get("created") or _dt.datetime.fromtimestamp(entry.modified).isoformat(timespec="minutes"))
    file_rows = [("File", str(entry.path)), ("Size", decimal_size(entry.size)),
                 ("Created", created[:16].replace("T", " ")),
                 ("Saved by", f"ResNet GUI {meta.get('app_version', '?')}, PyTorch {meta.get('torch_version', '?')}")]
    if notes.get("description"):
        file_rows.insert(0, ("About", str(notes["description"])))
    return [(title, rows) for title, rows in (("What it knows", knows), ("How it was trained", trained),
                                              ("Figures", figures), ("File", file_rows)) if rows]


class ModelDetailsDialog(QDialog):
    """A readable summary of one model, with its raw metadata on request and buttons to correct the class
    names and the preprocessing (saved through the Registry in a worker)."""

    edit_requested = Signal(str, dict)  # (model name, {"class_names": [...]} or {"preprocess": {...}})

    def __init__(self, entry, raw_json: str, parent=None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.entry = entry
        self.setWindowTitle(f"Model details: {entry.name}")
        layout = QVBoxLayout(self)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        body_layout = QVBoxLayout(body)
        self.value_labels: dict[str, QLabel] = {}
        for title, rows in summary_sections(entry):
            box = QGroupBox(title)
            form = QFormLayout(box)
            for label, value in rows:
                text = QLabel(value)
                text.setTextFormat(Qt.TextFormat.PlainText)
                text.setWordWrap(True)
                text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                form.addRow(f"{label}:", text)
                self.value_labels[label] = text
            body_layout.addWidget(box)
        self.raw = QPlainTextEdit(raw_json)
        self.raw.setReadOnly(True)
        self.raw.hide()
        body_layout.addWidget(self.raw, 1)
        body_layout.addStretch(0)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.names_button = QPushButton("Edit class names…")
        self.preprocess_button = QPushButton("Preprocessing…")
        self.raw_button = QPushButton("Show all metadata")
        self.raw_button.setCheckable(True)
        self.raw_button.toggled.connect(self.raw.setVisible)
        for b in (self.names_button, self.preprocess_button):
            b.setEnabled(entry.meta is not None)
            buttons.addButton(b, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.raw_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.names_button.clicked.connect(self.edit_class_names)
        self.preprocess_button.clicked.connect(self.edit_preprocess)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(680, 620)

    def edit_class_names(self) -> None:
        meta = self.entry.meta
        dialog = ClassNamesDialog({"num_classes": meta["num_classes"], "class_names": meta["class_names"]}, self,
                                  intro=f"The class names of “{self.entry.name}”, one per line, in the order the model "
                                        "was trained with.")
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted and dialog.names() != meta["class_names"]:
                self.edit_requested.emit(self.entry.name, {"class_names": dialog.names()})
        finally:
            dialog.deleteLater()

    def edit_preprocess(self) -> None:
        dialog = PreprocessDialog(self.entry.meta["preprocess"], self)
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                self.edit_requested.emit(self.entry.name, {"preprocess": dialog.values()})
        finally:
            dialog.deleteLater()
