"""Models tab: the registry as a table; import, rename, delete, set default, details, open folder."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .tasks import Task
from .widgets import Banner

COLUMNS = ["Name", "Architecture", "Classes", "Val. accuracy", "Dataset", "Created", "Size"]


def inspect_task(report, stop, path: str) -> dict:
    """What importing `path` would give, before asking the user for class names."""
    from resnet_gui.core.foreign import import_file

    ckpt = import_file(path)
    ours = "source_format" not in ckpt.notes
    generic = ckpt.class_names == [f"class_{i}" for i in range(ckpt.num_classes)]
    return {"path": path, "ours": ours, "arch": ckpt.arch, "num_classes": ckpt.num_classes,
            "class_names": ckpt.class_names, "needs_names": not ours, "generic": generic}


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


class SortItem(QTableWidgetItem):
    """A table item that sorts by its UserRole value when one is set."""

    def __lt__(self, other) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if a is not None and b is not None:
            return a < b
        return self.text().lower() < other.text().lower()


class ClassNamesDialog(QDialog):
    """Ask for the class names of an imported model (one per line, or from a text file)."""

    def __init__(self, info: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Class names")
        self.num_classes = info["num_classes"]
        layout = QVBoxLayout(self)
        text = (f"{Path(info['path']).name} is a {info['arch']} with {self.num_classes} classes, but the file does not "
                "say what they are called. Enter one name per line, in the order the model was trained with "
                "(usually alphabetical folder names).")
        if not info["generic"]:
            text += "\nThe names below are a guess (CIFAR-10 order); correct them if needed."
        intro = QLabel(text)
        intro.setWordWrap(True)
        layout.addWidget(intro)
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
        ok = len(names) == self.num_classes and len(set(names)) == len(names)
        self.count.setText(f"{len(names)} of {self.num_classes} names" + ("" if len(set(names)) == len(names)
                                                                           else " (names must be unique)"))
        self.ok.setEnabled(ok)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Class names file", str(Path.home()), "Text files (*.txt);;All (*)")
        if path:
            try:
                self.edit.setPlainText(Path(path).read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError) as exc:
                QMessageBox.warning(self, "Class names", f"Could not read {path}: {exc}")


class ModelsTab(QWidget):
    status_message = Signal(str)
    use_model = Signal(str)

    def __init__(self, registry, settings, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.ready = False
        self._tasks: list[Task] = []
        self._build()
        registry.changed.connect(self._refresh_table)
        registry.error.connect(lambda msg: msg and self.banner.show_message(msg, "error"))

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        self.intro = QLabel("Models are listed once PyTorch has loaded…")
        self.intro.setWordWrap(True)
        self.intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.intro)
        self.banner = Banner()
        layout.addWidget(self.banner)
        buttons = QHBoxLayout()
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add a .pth: one of ours, or a state dict saved by a PyTorch training script")
        self.import_button.clicked.connect(self.import_dialog)
        self.use_button = QPushButton("Use in Predict")
        self.use_button.clicked.connect(lambda: self.selected() and self.use_model.emit(self.selected()))
        self.default_button = QPushButton("Set as default")
        self.default_button.clicked.connect(self.set_default)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self.show_details)
        self.folder_button = QPushButton("Open folder")
        self.folder_button.clicked.connect(self.open_folder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.registry.refresh)
        for b in (self.import_button, self.use_button, self.default_button, self.rename_button, self.delete_button,
                  self.details_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.refresh_button)
        layout.addLayout(buttons)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda *_: self.show_details())
        layout.addWidget(self.table, 1)
        self._update_buttons()

    def set_ready(self) -> None:
        self.ready = True
        self._update_buttons()

    # ---- table ----------------------------------------------------------------------------------
    def _refresh_table(self) -> None:
        selected = self.selected()
        self.intro.setText(
            f"Models live in {self.registry.root} — every .pth there is listed. Train one in the Train tab, or "
            "import a checkpoint (ours, or a state dict saved by a PyTorch script: torchvision ResNets with a new "
            "fc layer, CIFAR ResNet-18 tutorials, DataParallel files) with Import…")
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        for entry in self.registry.entries:
            row = self.table.rowCount()
            self.table.insertRow(row)
            meta = entry.meta or {}
            is_default = entry.name == self.registry.default_name
            name = SortItem(("★ " if is_default else "") + entry.name)
            name.setData(Qt.ItemDataRole.UserRole + 1, entry.name)
            name.setToolTip(str(entry.path))
            created = meta.get("created") or _dt.datetime.fromtimestamp(entry.modified).isoformat(timespec="minutes")
            if entry.broken:
                cells = [name, SortItem("—"), SortItem("—"), SortItem("—"), SortItem(f"Broken: {entry.error}"),
                         SortItem(str(created)[:16].replace("T", " ")), SortItem(_size(entry.size))]
                for c in cells:
                    c.setForeground(QColor(190, 30, 45))
                    c.setToolTip(f"This file cannot be used: {entry.error}")
            else:
                acc = entry.val_accuracy
                acc_item = SortItem(f"{acc:.1%}" if acc is not None else "—")
                acc_item.setData(Qt.ItemDataRole.UserRole, acc if acc is not None else -1.0)
                dataset = meta.get("dataset", {})
                desc = dataset.get("name") or dataset.get("description") or "—"
                classes = SortItem(str(meta["num_classes"]))
                classes.setData(Qt.ItemDataRole.UserRole, meta["num_classes"])
                classes.setToolTip(", ".join(meta["class_names"][:50]))
                cells = [name, SortItem(meta["arch"]), classes, acc_item, SortItem(str(desc)),
                         SortItem(str(created)[:16].replace("T", " ")), SortItem(_size(entry.size))]
            cells[-1].setData(Qt.ItemDataRole.UserRole, entry.size)
            for col, item in enumerate(cells):
                self.table.setItem(row, col, item)
            if entry.name == selected:
                self.table.selectRow(row)
        self.table.setSortingEnabled(True)
        self._update_buttons()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole + 1)

    def select(self, name: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole + 1) == name:
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
        for b in (self.rename_button, self.delete_button, self.details_button):
            b.setEnabled(self.ready and entry is not None)

    # ---- actions --------------------------------------------------------------------------------
    def _task(self, fn, *args, on_done) -> Task:
        task = Task(fn, *args, name="models")
        task.succeeded.connect(on_done)
        task.failed.connect(lambda msg: self.banner.show_message(msg, "error"))
        task.finished.connect(lambda t=task: self._tasks.remove(t) if t in self._tasks else None)
        self._tasks.append(task)
        task.start()
        return task

    def import_dialog(self) -> None:
        start = self.settings.get("models.last_import_dir") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", start,
                                              "PyTorch checkpoints (*.pth *.pt);;All (*)")
        if path:
            self.settings.set("models.last_import_dir", str(Path(path).parent))
            self.import_file(path)

    def import_file(self, path: str, class_names: list[str] | None = None) -> None:
        """Inspect, ask for class names when the file has none, then import."""
        self.banner.show_message(f"Reading {Path(path).name}…", "info")
        self._task(inspect_task, path, on_done=lambda info: self._inspected(info, class_names))

    def _inspected(self, info: dict, class_names: list[str] | None) -> None:
        names = class_names
        if names is None and info["needs_names"]:
            dialog = ClassNamesDialog(info, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                self.banner.clear_message()
                return
            names = dialog.names()
        self.banner.show_message(f"Importing {Path(info['path']).name}…", "info")
        self.registry.run("import_file", info["path"], class_names=names, on_done=self._imported)

    def _imported(self, entry) -> None:
        self.banner.show_message(f"Imported as “{entry.name}” ({entry.meta['arch']}, {entry.meta['num_classes']} "
                                 "classes).", "success")
        self.status_message.emit(f"Imported {entry.name}")
        self._select_after = entry.name
        self.registry.changed.connect(self._select_pending)

    def _select_pending(self) -> None:
        self.registry.changed.disconnect(self._select_pending)
        self.select(getattr(self, "_select_after", ""))

    def set_default(self) -> None:
        name = self.selected()
        if name:
            self.registry.run("set_default", name, on_done=lambda _: self.banner.show_message(
                f"“{name}” is now the default model.", "success"))

    def rename(self) -> None:
        name = self.selected()
        if not name:
            return
        new, ok = QInputDialog.getText(self, "Rename model", f"New name for “{name}”:", text=name)
        if ok and new.strip() and new.strip() != name:
            self._select_after = new.strip()
            self.registry.run("rename", name, new.strip(), on_done=lambda _: self.registry.changed.connect(
                self._select_pending))

    def delete(self) -> None:
        name = self.selected()
        if not name:
            return
        answer = QMessageBox.question(self, "Delete model", f"Delete “{name}”? Its file is removed from the registry "
                                      "folder; this cannot be undone.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.registry.run("remove", name, on_done=lambda _: self.banner.show_message(f"Deleted “{name}”.", "info"))

    def details_text(self, name: str) -> str:
        entry = self.registry.entry(name)
        if entry is None:
            return ""
        return json.dumps(entry.to_json(), indent=2, ensure_ascii=False)

    def show_details(self) -> None:
        name = self.selected()
        if not name:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model details — {name}")
        layout = QVBoxLayout(dialog)
        text = QPlainTextEdit(self.details_text(name))
        text.setReadOnly(True)
        layout.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(620, 560)
        dialog.exec()

    def open_folder(self) -> None:
        if self.registry.root:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.registry.root))
