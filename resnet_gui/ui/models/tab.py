"""Models tab: the registry as a table; import, rename, delete, set default, details (with class-name and
preprocessing edits), export to ONNX or TorchScript, add familiarity data from a folder, open the folder."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui import edition
from resnet_gui.text import decimal_size, plural

from ..common.flow import FlowLayout
from ..common.model_words import incomplete_words
from ..common.widgets import Banner, plain_tip
from ..common.workers import TaskSlot
from .dialogs import ClassNamesDialog, ModelDetailsDialog, RenameDialog
from .export_dialog import ExportDialog
from .jobs import ModelJobs

COLUMNS = ["Name", "Architecture", "Classes", "Accuracy", "Dataset", "Created", "Size"]
ACCURACY_TIPS = {"test accuracy": "Test accuracy: measured on held-out images that chose nothing during training",
                 "validation accuracy": "Validation accuracy: measured on the split that chose the best epoch, so "
                                        "somewhat optimistic; this model has no held-out test figure"}
NAME_ROLE = Qt.ItemDataRole.UserRole + 1
BROKEN_COLOR = QColor(190, 30, 45)


def inspect_task(report, stop, path: str, allow_duplicate: bool) -> dict:
    """What importing `path` would give, before asking the user for class names (a file imported before is
    refused here, naming its model, unless allow_duplicate)."""
    from resnet_gui.core.models.import_foreign import import_file
    from resnet_gui.core.models.registry import Registry

    if not allow_duplicate:
        Registry().refuse_duplicate(Path(path))
    ckpt = import_file(path)
    ours = "source_format" not in ckpt.notes
    generic = ckpt.class_names == [f"class_{i}" for i in range(ckpt.num_classes)]
    return {"path": path, "ours": ours, "arch": ckpt.arch, "num_classes": ckpt.num_classes,
            "class_names": ckpt.class_names, "needs_names": not ours, "generic": generic}


class SortItem(QTableWidgetItem):
    """A table item that sorts by its UserRole value when one is set."""

    def __lt__(self, other) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if a is not None and b is not None:
            return a < b
        return self.text().lower() < other.text().lower()


class ModelsTab(QWidget):
    status_message = Signal(str)
    use_model_requested = Signal(str)

    def __init__(self, registry, settings, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.ready = False
        self._select_after: str | None = None
        self._pending_import: tuple[str, list[str] | None] | None = None  # to import again on request
        self._rename_text: tuple[str, str] | None = None  # (model, what was typed) of a rename not done
        self.rename_dialog: RenameDialog | None = None
        self._inspect = TaskSlot("models-inspect", self)
        self._build()
        registry.changed.connect(self._refresh_table)
        registry.failed.connect(self._registry_error)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        self.intro = QLabel("Models are listed once PyTorch has loaded…")
        self.intro.setTextFormat(Qt.TextFormat.PlainText)
        self.intro.setWordWrap(True)
        self.intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.intro)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.jobs = ModelJobs()
        self.jobs.done.connect(lambda text, actions: self._say(text, "success", actions))
        self.jobs.failed.connect(lambda failure: self._say(failure.message, "error"))
        self.jobs.cancelled.connect(lambda: self._say("Cancelled; the model is unchanged.", "info"))
        self.jobs.changed.connect(self.registry.refresh)
        self.jobs.busy_changed.connect(lambda _busy: self._update_buttons())
        layout.addWidget(self.jobs)
        buttons = FlowLayout()  # wraps at 1024 px instead of widening the window
        self.import_button = self._button("Import…", self.import_dialog,
                                          "Add a .pth: one of ours, or a state dict saved by a PyTorch training script")
        self.use_button = self._button("Use in Predict", self._use_selected)
        self.default_button = self._button("Set as default", self.set_default)
        self.rename_button = self._button("Rename…", self.rename)
        self.delete_button = self._button("Delete…", self.delete)
        self.details_button = self._button("Details…", self.show_details,
                                           "What the model knows, how it was trained; edit its class names")
        self.export_button = self._button("Export…", self.export_dialog,
                                          "Save the model as ONNX or TorchScript for other programs, with a model card")
        self.familiarity_button = self._button(
            "Add familiarity data…", self.familiarity_dialog,
            "Show the model a folder of its classes' images, so that Predict can say when an image looks unlike "
            "anything it knows")
        self.folder_button = self._button("Open folder", self.open_folder)
        self.refresh_button = self._button("Refresh", self.registry.refresh)
        for b in (self.import_button, self.use_button, self.default_button, self.rename_button, self.delete_button,
                  self.details_button, self.export_button, self.familiarity_button):
            buttons.addWidget(b)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.refresh_button)
        layout.addLayout(buttons)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # A to Z
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda *_: self.show_details())
        layout.addWidget(self.table, 1)
        self._update_buttons()

    def _button(self, text: str, slot, tip: str = "") -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        if tip:
            button.setToolTip(tip)
        return button

    def _use_selected(self) -> None:
        name = self.selected()
        if name:
            self.use_model_requested.emit(name)

    def set_ready(self) -> None:
        self.ready = True
        self._update_buttons()

    # ---- table ------------------------------------------------------------------------------------
    def _refresh_table(self) -> None:
        selected = self._select_after or self.selected()
        self._select_after = None
        self.intro.setText(
            f"Models live in {self.registry.root}; every .pth there is listed. {edition.train_one()}, or "
            "import a checkpoint with Import… (ours, or a state dict saved by a PyTorch script: torchvision ResNets "
            "with a new fc layer, CIFAR ResNet-18 tutorials, DataParallel files).")
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        for entry in self.registry.entries:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for col, item in enumerate(self._cells(entry)):
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        if selected:
            self.select(selected)
        self._update_buttons()

    def _cells(self, entry) -> list[QTableWidgetItem]:
        meta = entry.meta or {}
        is_default = entry.name == self.registry.default_name
        name = SortItem(("★ " if is_default else "") + entry.name)
        name.setData(NAME_ROLE, entry.name)
        name.setData(Qt.ItemDataRole.UserRole, entry.name.lower())
        name.setToolTip(plain_tip(str(entry.path)))
        created = SortItem(str(meta.get("created") or _dt.datetime.fromtimestamp(entry.modified).isoformat(
            timespec="minutes"))[:16].replace("T", " "))
        size = SortItem(decimal_size(entry.size))
        size.setData(Qt.ItemDataRole.UserRole, entry.size)
        if entry.broken:
            cells = [name, SortItem("—"), SortItem("—"), SortItem("—"), SortItem(f"Broken: {entry.error}"), created,
                     size]
            for c in cells:
                c.setForeground(BROKEN_COLOR)
                c.setToolTip(plain_tip(f"This file cannot be used: {entry.error}"))
            return cells
        figure = entry.accuracy()
        acc_item = SortItem(f"{figure[0]:.1%} {figure[1].split()[0]}" if figure is not None else "—")
        acc_item.setData(Qt.ItemDataRole.UserRole, figure[0] if figure is not None else -1.0)
        if figure is not None:
            acc_item.setToolTip(ACCURACY_TIPS[figure[1]])
        dataset = meta.get("dataset", {})
        classes = SortItem(str(meta["num_classes"]))
        classes.setData(Qt.ItemDataRole.UserRole, meta["num_classes"])
        classes.setToolTip(plain_tip(", ".join(meta["class_names"][:50])))
        incomplete = incomplete_words(meta)
        if incomplete:  # stopped before its last epoch: not one of the finished ones
            name.setText(f"{name.text()} ({incomplete})")
            name.setToolTip(plain_tip(f"Its training run stopped before the last epoch; resume it in the Train or "
                                      f"Runs tab to finish it.\n{entry.path}"))
        return [name, SortItem(meta["arch"]), classes, acc_item,
                SortItem(str(dataset.get("name") or dataset.get("description") or "—")), created, size]

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(NAME_ROLE)

    def select(self, name: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(NAME_ROLE) == name:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        name = self.selected()
        entry = self.registry.entry(name) if name else None
        usable = entry is not None and not entry.broken
        self.import_button.setEnabled(self.ready)
        self.refresh_button.setEnabled(self.ready)
        for b in (self.use_button, self.default_button):
            b.setEnabled(self.ready and usable)
        idle = self.ready and usable and not self.jobs.busy()
        self.export_button.setEnabled(idle)
        knows = usable and (entry.meta or {}).get("familiarity") is not None
        self.familiarity_button.setEnabled(idle and not knows)
        self.familiarity_button.setToolTip(
            "This model already has familiarity data" if knows else
            "Show the model a folder of its classes' images, so that Predict can say when an image looks unlike "
            "anything it knows")
        for b in (self.rename_button, self.delete_button, self.details_button):
            b.setEnabled(self.ready and entry is not None)

    # ---- actions ----------------------------------------------------------------------------------
    def _say(self, text: str, kind: str = "info", actions=()) -> None:
        """Each operation replaces what the previous one said."""
        self.banner.show_message(text, kind, actions)

    def import_dialog(self) -> None:
        start = self.settings.get("models.last_import_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", start,
                                              "PyTorch checkpoints (*.pth *.pt);;All (*)")
        if path:
            self.settings.set("models.last_import_dir", str(Path(path).parent))
            self.import_file(path)

    def import_file(self, path: str, class_names: list[str] | None = None, allow_duplicate: bool = False) -> None:
        """Inspect, ask for class names when the file has none, then import."""
        self._say(f"Reading {Path(path).name}…")
        self._pending_import = (path, class_names)
        self._inspect.start(inspect_task, path, allow_duplicate,
                            on_done=lambda info: self._inspected(info, class_names, allow_duplicate),
                            on_failed=self._registry_error)

    def _inspected(self, info: dict, class_names: list[str] | None, allow_duplicate: bool) -> None:
        names = class_names
        if names is None and info["needs_names"]:
            dialog = ClassNamesDialog(info, self)
            try:
                if dialog.exec() != QDialog.DialogCode.Accepted:
                    self.banner.clear_message()
                    return
                names = dialog.names()
            finally:
                dialog.deleteLater()
        self._import(info["path"], names, allow_duplicate)

    def _import(self, path: str, names: list[str] | None, allow_duplicate: bool = False) -> None:
        self._say(f"Importing {Path(path).name}…")
        self._pending_import = (path, names)
        self.registry.run("import_file", path, class_names=names, allow_duplicate=allow_duplicate,
                          on_done=self._imported)

    def _registry_error(self, failure) -> None:
        actions = []
        if failure.remedy is not None and failure.remedy.kind == "allow_duplicate" and self._pending_import is not None:
            path, names = self._pending_import
            actions = [("Import it again anyway", lambda: self.import_file(path, names, allow_duplicate=True))]
        self._say(failure.message, "error", actions)

    def _imported(self, entry) -> None:
        self._pending_import = None
        self._say(f"Imported as “{entry.name}” ({entry.meta['arch']}, "
                  f"{plural(entry.meta['num_classes'], 'class', 'classes')}).", "success")
        self.status_message.emit(f"Imported {entry.name}.")
        self._select_after = entry.name

    def set_default(self) -> None:
        name = self.selected()
        if name:
            self.registry.run("set_default", name, on_done=lambda _: self._say(
                f"“{name}” is now the default model.", "success"))

    def rename(self) -> None:
        name = self.selected()
        if not name:
            return
        kept = self._rename_text if self._rename_text and self._rename_text[0] == name else None
        dialog = RenameDialog(name, [e.name for e in self.registry.entries], kept[1] if kept else None, self)
        self.rename_dialog = dialog  # for tests
        ok = dialog.exec() == QDialog.DialogCode.Accepted
        new = dialog.name()
        self._rename_text = (name, new) if not ok or new == name else None  # reopened, it shows what was typed
        if ok and new and new != name:
            self.banner.clear_message()

            def renamed(entry):
                self._select_after = entry.name
                self._say(f"Renamed “{name}” to “{entry.name}”.", "success")

            task = self.registry.run("rename", name, new, on_done=renamed)
            task.failed.connect(lambda _failure: setattr(self, "_rename_text", (name, new)))

    def delete(self) -> None:
        name = self.selected()
        if not name:
            return
        answer = QMessageBox.question(self, "Delete model", f"Delete “{name}”? Its file is removed from the registry "
                                      "folder; this cannot be undone.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.banner.clear_message()
            self.registry.run("remove", name, on_done=lambda _: self._say(f"Deleted “{name}”."))

    def details_text(self, name: str) -> str:
        entry = self.registry.entry(name)
        if entry is None:
            return ""
        return json.dumps(entry.to_json(), indent=2, ensure_ascii=False)

    def show_details(self) -> ModelDetailsDialog | None:
        name = self.selected()
        entry = self.registry.entry(name) if name else None
        if entry is None:
            return None
        dialog = ModelDetailsDialog(entry, self.details_text(name), self)  # deletes itself when closed
        dialog.edit_requested.connect(self.save_edit)
        dialog.open()
        return dialog

    def save_edit(self, name: str, changes: dict) -> None:
        """Save new class names or preprocessing (Registry.update, in a worker; the weights stay as they are)."""
        what = "class names" if "class_names" in changes else "preprocessing"
        self._say(f"Saving the {what} of “{name}”…")

        def saved(entry):
            self._select_after = entry.name
            self._say(f"Saved the {what} of “{entry.name}”.", "success")

        self.registry.run("update", name, on_done=saved, **changes)

    # ---- export and familiarity (ModelJobs) --------------------------------------------------------
    def export_dialog(self) -> None:
        name = self.selected()
        if not name:
            return
        dialog = ExportDialog(name, self.settings.get("models.export_dir", str(Path.home())), self)
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                self.settings.set("models.export_dir", str(Path(dialog.output()).expanduser().parent))
                self.export(name, dialog.fmt(), dialog.output())
        finally:
            dialog.deleteLater()

    def export(self, name: str, fmt: str, output: str) -> None:
        entry = self.registry.entry(name)
        if entry is not None and not self.jobs.busy():
            self.banner.clear_message()
            self.jobs.export(name, str(entry.path), fmt, output)

    def familiarity_dialog(self) -> None:
        name = self.selected()
        if not name:
            return
        folder = QFileDialog.getExistingDirectory(
            self, f"Images of the classes of “{name}” (one sub-folder per class)",
            self.settings.get("models.familiarity_dir", str(Path.home())))
        if not folder:
            return
        self.settings.set("models.familiarity_dir", folder)
        entry = self.registry.entry(name)
        calibrate = False
        if entry is not None and not (entry.meta or {}).get("calibration"):
            # a temperature fitted on the model's own training images would make it overconfident: ask
            answer = QMessageBox.question(
                self, "Calibrate its confidences too?",
                f"“{name}” is uncalibrated: its confidences are the network's raw ones, often too sure.\n\n"
                "Were the images in this folder left out of its training? If so, a fifth of them can also be used "
                "to calibrate its confidences. If it was trained on them (or you don't know), choose No.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            calibrate = answer == QMessageBox.StandardButton.Yes
        self.add_familiarity(name, folder, calibrate=calibrate)

    def add_familiarity(self, name: str, folder: str, *, calibrate: bool = False) -> None:
        if self.registry.entry(name) is not None and not self.jobs.busy():
            self.banner.clear_message()
            self.jobs.add_familiarity(name, folder, calibrate=calibrate)

    def open_folder(self) -> None:
        if self.registry.root:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.registry.root))
