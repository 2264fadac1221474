"""How the folder results are shown as a table: one row per prediction (thumbnail, file, class, confidence, status)
carrying what the table sorts and filters by, the status cell at a threshold, and the table itself (compact rows,
sortable, filtered by status through a proxy). FolderResultsView (folder_results_view.py) fills it as rows come."""
from __future__ import annotations

import os

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from ..common.widgets import plain_tip
from .answer import ERROR, STATUS_WORDS, SURE, UNFAMILIAR, UNSURE, confidence_words, status_tip, unfamiliar_words

SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # what the table sorts by (numbers for confidence)
PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 3
FILE_COLUMN, CLASS_COLUMN, CONFIDENCE_COLUMN, STATUS_COLUMN = 1, 2, 3, 4
STATUS_ORDER = {state: i for i, state in enumerate((ERROR, UNFAMILIAR, UNSURE, SURE))}
ERROR_COLOR = Qt.GlobalColor.red
ROW_HEIGHT, ICON_PX = 34, 30   # compact rows: about 25 fit where 11 did


def result_row(pred, thumb, number: int, muted: QColor) -> list[QStandardItem]:
    """The row of one prediction, its status cell left blank (set_status); `number`: its place in arrival order
    (the thumbnail column sorts by it); `muted`: the colour of an unfamiliar image's confidence."""
    icon_item = QStandardItem()
    if thumb is not None:
        icon_item.setData(QPixmap.fromImage(thumb), Qt.ItemDataRole.DecorationRole)
    file_item = QStandardItem(os.path.basename(pred.path))
    file_item.setToolTip(plain_tip(pred.path))
    file_item.setData(pred.path, PATH_ROLE)
    if pred.ok:  # the confidence's words and the class's tooltip are written with the status (set_status)
        class_item = QStandardItem(pred.label)
        conf_item = QStandardItem()
        conf_item.setData(pred.confidence, SORT_ROLE)
        if pred.unfamiliar:  # its confidence is among classes the image does not belong to: greyed, sorted apart
            conf_item.setForeground(muted)
            conf_item.setData(pred.confidence - 2.0, SORT_ROLE)  # below every familiar answer
            why = getattr(pred, "unfamiliar_why", None)
            conf_item.setToolTip(plain_tip("How sure it is among the classes it knows; but the image is unlike them "
                                           "all (unfamiliar), so this number means little." +
                                           (f" {unfamiliar_words(why)}" if why else "")))
    else:
        class_item = QStandardItem("Error")
        class_item.setForeground(ERROR_COLOR)
        conf_item = QStandardItem("")
        conf_item.setData(-3.0, SORT_ROLE)  # failures sort first, then unfamiliar, then the least confident
        for item in (icon_item, file_item, class_item, conf_item):
            item.setToolTip(plain_tip(pred.error))
    conf_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    icon_item.setData(number, SORT_ROLE)
    file_item.setData(file_item.text().lower(), SORT_ROLE)
    class_item.setData(class_item.text().lower(), SORT_ROLE)
    return [icon_item, file_item, class_item, conf_item, QStandardItem()]


def set_status(row: list[QStandardItem], pred, threshold: float, familiarity_limit: float | None) -> str:
    """Write the prediction's state at `threshold` into its row's status cell (words, filter and sort keys, why),
    and the figures beside it (confidence, the class's top classes), worded so that they never contradict the
    state (a not-sure 99.86 % reads 99.8 % beside a 99.9 % threshold); returns the state."""
    state = pred.state(threshold)
    if pred.ok:
        row[CONFIDENCE_COLUMN].setText(confidence_words(pred.confidence, pred, threshold))
        row[CLASS_COLUMN].setToolTip(plain_tip(", ".join(
            f"{label} {confidence_words(p, pred, threshold)}" for label, p in pred.top_k)))
    item = row[STATUS_COLUMN]
    item.setText(STATUS_WORDS[state])
    item.setData(state, STATUS_ROLE)
    item.setData(STATUS_ORDER[state], SORT_ROLE)
    item.setToolTip(plain_tip(status_tip(pred, state, threshold, familiarity_limit)))
    return state


def results_model() -> tuple[QStandardItemModel, QSortFilterProxyModel]:
    """The rows' model, and the proxy that sorts them (SORT_ROLE) and filters them by status (STATUS_ROLE)."""
    model = QStandardItemModel(0, 5)
    model.setHorizontalHeaderLabels(["", "File", "Class", "Confidence", "Status"])
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterKeyColumn(STATUS_COLUMN)
    proxy.setFilterRole(STATUS_ROLE)
    return model, proxy


def results_table(proxy: QSortFilterProxyModel) -> QTableView:
    """The table of the rows: whole rows selected, read-only, compact, both ends of long file names kept, sorted
    by file name until a header is clicked."""
    table = QTableView()
    table.setModel(proxy)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep both ends of long file names
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
    table.verticalHeader().setMinimumSectionSize(ROW_HEIGHT)
    table.setIconSize(QPixmap(ICON_PX, ICON_PX).size())
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
    header.resizeSection(0, ICON_PX + 10)
    header.setSectionResizeMode(FILE_COLUMN, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(CLASS_COLUMN, QHeaderView.ResizeMode.Interactive)
    header.resizeSection(CLASS_COLUMN, 200)
    header.setSectionResizeMode(CONFIDENCE_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(STATUS_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
    table.setSortingEnabled(True)
    table.sortByColumn(FILE_COLUMN, Qt.SortOrder.AscendingOrder)  # A to Z, new rows in their place
    return table
