"""Runs' configurations side by side: one row per setting, one column per run; the settings whose values
differ are listed first and highlighted (in colours that follow the theme). "Only differences" hides the rest."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.train.config import heading
from resnet_gui.text import plural

from ..common import theme
from ..common.widgets import is_dark

DIFF_LIGHT, DIFF_DARK = "#fff1c2", "#4d4016"   # the amber of the warning banners, as a row background
DIFFERS_ROLE = Qt.ItemDataRole.UserRole + 1
LONG_LIST = 4   # lists longer than this are shown as a count
WIDEST_COLUMN = 180   # pixels; longer values (folders) are elided in the middle, the tooltip has them whole


def format_value(value) -> str:
    """A configuration value in a cell: – for none, yes/no, numbers without float noise."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        if len(value) > LONG_LIST:
            return f"{len(value)} items"
        return ", ".join(format_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


class ConfigDiff(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.toggled.connect(self._filter)
        layout.addWidget(self.only_differences)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # run names differ at their ends (the date and time): elide their middles, never clip them
        self.table.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.differing: list[str] = []
        self.keys: list[str] = []
        theme.notifier().changed.connect(self._recolour)

    def clear(self, message: str = "") -> None:
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.keys, self.differing = [], []
        self.say(message)

    def say(self, text: str) -> None:
        """A line above the table (what is being compared, or why nothing is)."""
        self.summary.setText(text)

    def set_configs(self, configs: dict[str, dict], keys: list[str], differing: list[str]) -> None:
        """`configs`: run name -> configuration; `keys` in display order; `differing`: the keys that differ."""
        self.clear()
        names = list(configs)
        self.differing = [k for k in keys if k in differing]
        self.keys = self.differing + [k for k in keys if k not in differing]
        self.table.setColumnCount(len(names))
        for col, name in enumerate(names):
            item = QTableWidgetItem(name)  # plain text
            item.setToolTip(name)
            self.table.setHorizontalHeaderItem(col, item)
        self.table.setRowCount(len(self.keys))
        bold = QFont(self.font())
        bold.setBold(True)
        for row, key in enumerate(self.keys):
            differs = key in differing
            header = QTableWidgetItem(heading(key))  # the Train form's words; the key for the command line
            header.setToolTip(f"{key} in the configuration file and on the command line")
            self.table.setVerticalHeaderItem(row, header)
            if differs:
                header.setFont(bold)
            for col, name in enumerate(names):
                text = format_value(configs[name][key]) if key in configs[name] else "(not set)"
                item = QTableWidgetItem(text)
                item.setToolTip(f"{heading(key)} ({key}) = {text}")
                item.setData(DIFFERS_ROLE, differs)
                if differs:
                    item.setFont(bold)
                self.table.setItem(row, col, item)
        n = len(self.differing)
        differ = f"{plural(n, 'setting')} differ{'s' if n == 1 else ''}"
        self.summary.setText(f"{len(names)} runs: {differ}"
                             + (f" ({', '.join(heading(k) for k in self.differing)})." if n
                                else "; the configurations are the same.")
                             if len(names) > 1 else "The run's configuration.")
        self.only_differences.setEnabled(len(names) > 1 and n > 0)
        self._recolour()
        self._filter()
        self.table.resizeColumnsToContents()
        for col in range(self.table.columnCount()):  # every run's column in view, with its name above it
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), WIDEST_COLUMN))

    def _recolour(self) -> None:
        brush = QBrush(QColor(DIFF_DARK if is_dark() else DIFF_LIGHT))
        for row in range(self.table.rowCount()):
            for col in range(self.table.columnCount()):
                item = self.table.item(row, col)
                if item is not None:
                    item.setBackground(brush if item.data(DIFFERS_ROLE) else QBrush())

    def _filter(self) -> None:
        only = self.only_differences.isChecked() and self.only_differences.isEnabled()
        for row, key in enumerate(self.keys):
            self.table.setRowHidden(row, only and key not in self.differing)

    def highlighted_keys(self) -> list[str]:
        return [key for row, key in enumerate(self.keys) if self.table.item(row, 0) is not None
                and self.table.item(row, 0).data(DIFFERS_ROLE)]
