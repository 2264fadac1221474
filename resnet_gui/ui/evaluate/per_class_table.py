"""The per-class figures of an evaluation as a sortable table: precision, recall, F1 and support. A class
recognised far less often than the others is marked, and its row says why in a tooltip."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ["Class", "Precision", "Recall", "F1", "Images"]
LOW_RECALL = 0.5            # below half the others' mean recall: marked


def name_key(name: str) -> tuple:
    """A class name's place in the Class column: any case, numbers as numbers ("2" before "10")."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name.casefold()) if part)


class _Item(QTableWidgetItem):
    """Sorts by its UserRole value (a number, or a class name's key: the ⚠ mark does not move a row)."""

    def __lt__(self, other) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        if isinstance(a, str) and isinstance(b, str):
            return name_key(a) < name_key(b)
        return self.text().lower() < other.text().lower()


class PerClassTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setAccessibleName("Per-class figures")
        # by class at first, A to Z: the arrow on Class tells the truth (a flagged class keeps its place)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.setSortIndicatorShown(True)

    def set_classes(self, per_class: list) -> None:
        """per_class: core.metrics.ClassFigures (name, precision, recall, f1, support)."""
        self.setSortingEnabled(False)
        self.setRowCount(0)
        for i, c in enumerate(per_class):
            others = [o.recall for j, o in enumerate(per_class) if o.support and j != i]
            low = bool(c.support) and bool(others) and c.recall < LOW_RECALL * (sum(others) / len(others))
            row = self.rowCount()
            self.insertRow(row)
            name = _Item(("⚠ " if low else "") + c.name)
            name.setData(Qt.ItemDataRole.UserRole, c.name)
            cells = [name]
            for value in (c.precision, c.recall, c.f1):
                item = _Item(f"{value:.1%}" if c.support or value else "—")
                item.setData(Qt.ItemDataRole.UserRole, float(value))
                cells.append(item)
            support = _Item(f"{c.support:,}")
            support.setData(Qt.ItemDataRole.UserRole, int(c.support))
            cells.append(support)
            tip = (f"{c.name}: of its {c.support:,} images, {c.recall:.1%} were recognised (recall); of the images "
                   f"called {c.name}, {c.precision:.1%} really were (precision).")
            if low:
                tip += " Recognised far less often than the other classes: add more varied images of it."
            for col, item in enumerate(cells):
                item.setToolTip(tip)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, col, item)
        self.setSortingEnabled(True)

    def clear_classes(self) -> None:
        self.setRowCount(0)

    def filter(self, text: str) -> int:
        """Show only the classes whose name holds `text` (any case); returns how many are shown."""
        needle = text.strip().lower()
        shown = 0
        for row in range(self.rowCount()):
            hide = bool(needle) and needle not in self.item(row, 0).text().lower()
            self.setRowHidden(row, hide)
            shown += not hide
        return shown


def with_filter(table: PerClassTable):
    """The table under a "Find a class" field (hundreds of classes stay easy to look up)."""
    from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    find = QLineEdit()
    find.setPlaceholderText("Find a class…")
    find.setClearButtonEnabled(True)
    find.textChanged.connect(table.filter)
    column.addWidget(find)
    column.addWidget(table, 1)
    box.find_edit = find
    return box
