"""The table of training runs: name, status, dataset, architecture, key settings, epochs done of planned, best
validation accuracy, duration and disk use. Several rows can be selected (Ctrl/Shift+click); numbers sort as
numbers; the selection survives a refresh."""
from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from resnet_gui.text import decimal_size, duration

COLUMNS = ["Run", "Status", "Dataset", "Architecture", "Settings", "Epochs", "Best val. acc.", "Duration", "Disk"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


class SortItem(QTableWidgetItem):
    """Sorts by its SORT_ROLE value (numbers), or by its text, case-insensitively."""

    def __lt__(self, other) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is not None and b is not None:
            return a < b
        if a is None and b is not None:
            return True
        if b is None and a is not None:
            return False
        return self.text().lower() < other.text().lower()


def status_text(info) -> str:
    if info.status == "finished":
        return "finished, state removed" if not info.has_state else "finished"
    if info.status == "unfinished":
        return "stopped, resumable" if info.resumable else "stopped, state removed"
    if info.status == "no state":
        return "ended before epoch 1"
    return "unreadable"


def settings_text(info) -> str:
    """The key hyperparameters in a few words: "sgd lr 0.05 · batch 64 · cosine"."""
    hp = info.hyperparameters or {}
    parts = []
    if hp.get("optimizer") or hp.get("lr") is not None:
        lr = hp.get("lr")
        parts.append(f"{hp.get('optimizer') or ''} lr {lr:g}".strip() if isinstance(lr, (int, float))
                     else str(hp.get("optimizer")))
    if hp.get("batch_size"):
        parts.append(f"batch {hp['batch_size']}")
    if hp.get("schedule"):
        parts.append(str(hp["schedule"]))
    if hp.get("pretrained"):
        parts.append("pretrained")
    if isinstance(hp.get("world_size"), int) and hp["world_size"] > 1:
        parts.append(f"{hp['world_size']} processes")
    return " · ".join(parts) or "–"


class RunsTable(QTableWidget):
    selection_changed = Signal(list)   # the selected run names, in the table's order

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Settings"), QHeaderView.ResizeMode.Stretch)
        self.infos: dict[str, object] = {}
        self.itemSelectionChanged.connect(lambda: self.selection_changed.emit(self.selected()))

    def set_runs(self, runs: list) -> None:
        keep = set(self.selected())
        self.blockSignals(True)
        self.setSortingEnabled(False)
        self.clearContents()
        self.setRowCount(len(runs))
        self.infos = {r.name: r for r in runs}
        for row, info in enumerate(runs):
            for col, item in enumerate(self._cells(info)):
                self.setItem(row, col, item)
        self.setSortingEnabled(True)
        self.clearSelection()
        for row in range(self.rowCount()):
            if self.item(row, 0).text() in keep:
                self.selectionModel().select(self.model().index(row, 0),
                                             self.selectionModel().SelectionFlag.Select
                                             | self.selectionModel().SelectionFlag.Rows)
        self.blockSignals(False)
        self.selection_changed.emit(self.selected())

    def _cells(self, info) -> list[QTableWidgetItem]:
        def cell(text: str, sort=None, tip: str = "", align_right: bool = False) -> SortItem:
            item = SortItem(text)
            item.setData(SORT_ROLE, sort)
            if tip:
                item.setToolTip(tip)
            if align_right:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return item

        when = dt.datetime.fromtimestamp(info.modified).strftime("%Y-%m-%d %H:%M") if info.modified else "–"
        name = cell(info.name, tip=f"{info.path}\nlast written {when}")
        status = cell(status_text(info), tip=info.error or (f"state removed {info.state_removed}"
                                                            if info.state_removed else ""))
        hp = info.hyperparameters or {}
        settings = cell(settings_text(info), tip="\n".join(f"{k} = {v}" for k, v in hp.items()))
        epochs = cell(f"{info.epoch} of {info.epochs}" if info.epoch is not None and info.epochs else "–",
                      info.epoch, align_right=True)
        best = info.best_val_accuracy
        accuracy = cell(f"{best:.1%}" if best is not None else "–", best, align_right=True,
                        tip=f"best model: {info.best_name}" if info.best_name else "")
        estimated = info.duration_source == "files"
        took = cell(("≈ " if estimated else "") + duration(info.duration_s) if info.duration_s else "–",
                        info.duration_s, align_right=True,
                        tip="estimated from the times of the run's files" if estimated else "training time per epoch, "
                        "summed")
        disk = cell(decimal_size(info.disk_bytes), info.disk_bytes, align_right=True,
                    tip=f"resumable state: {decimal_size(info.state_bytes)}" if info.has_state
                    else "no resumable state")
        return [name, status, cell(info.dataset or "–"), cell(info.arch or "–"), settings, epochs, accuracy, took,
                disk]

    def selected(self) -> list[str]:
        rows = sorted(index.row() for index in self.selectionModel().selectedRows())
        return [self.item(row, 0).text() for row in rows if self.item(row, 0) is not None]

    def select_names(self, names: list[str]) -> None:
        self.clearSelection()
        flags = self.selectionModel().SelectionFlag.Select | self.selectionModel().SelectionFlag.Rows
        for row in range(self.rowCount()):
            if self.item(row, 0).text() in names:
                self.selectionModel().select(self.model().index(row, 0), flags)

    def info(self, name: str):
        return self.infos.get(name)
