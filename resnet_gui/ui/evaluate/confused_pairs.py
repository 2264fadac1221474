"""The most confused pairs (fastai's most_confused): which class was called which, most often first; a click shows
those images. With many classes this says what the matrix can only show as dots."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..common.widgets import plain_tip

COLUMNS = ["True class", "Called", "Images", "Share of the class"]


class ConfusedPairs(QWidget):
    pair_clicked = Signal(int, int)   # (true class index, predicted class index)

    def __init__(self, parent=None):
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel("The classes the model mixes up appear here after an evaluation, most images first.")
        self.caption.setWordWrap(True)
        column.addWidget(self.caption)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellClicked.connect(self._clicked)
        self.table.setAccessibleName("Most confused pairs")
        column.addWidget(self.table, 1)
        self.pairs: list[dict] = []

    def set_pairs(self, pairs: list[dict], total_mistakes: int) -> None:
        """pairs: core.evaluation.metrics.most_confused (true, predicted, indices, count, share)."""
        self.pairs = list(pairs)
        self.table.setRowCount(len(self.pairs))
        for row, pair in enumerate(self.pairs):
            cells = [pair["true"], pair["predicted"], f"{pair['count']:,}", f"{pair['share']:.1%}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tip(f"{pair['count']:,} images of {pair['true']} were called "
                                          f"{pair['predicted']}. Click to see them."))
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        shown = sum(p["count"] for p in self.pairs)
        self.caption.setText(
            f"{len(self.pairs):,} pairs of classes confused, most images first: they hold {shown:,} of the "
            f"{total_mistakes:,} mistakes. Click a pair to see its images." if self.pairs else
            "No class was confused with another.")

    def _clicked(self, row: int, _col: int) -> None:
        pair = self.pairs[row]
        self.pair_clicked.emit(pair["true_index"], pair["predicted_index"])
