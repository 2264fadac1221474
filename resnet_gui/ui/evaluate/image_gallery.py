"""A gallery of evaluated images: thumbnail, true class, predicted class, confidence. It fills as the
thumbnails arrive from a worker; double-clicking an image that is a file asks to open it (in Predict)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from .session import THUMBNAIL_PX, Thumbnails, is_file_row

PATH_ROLE = Qt.ItemDataRole.UserRole
ROW_ROLE = Qt.ItemDataRole.UserRole + 1


class ImageGallery(QWidget):
    image_activated = Signal(str)    # a file was double-clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("Click a cell of the matrix to see its images.")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.list.setGridSize(QSize(THUMBNAIL_PX + 56, THUMBNAIL_PX + 64))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(4)
        self.list.setAccessibleName("Images of the chosen cell")
        self.list.itemDoubleClicked.connect(self._activated)
        layout.addWidget(self.list, 1)
        self.key: tuple | None = None
        self._placeholder = self._blank()

    def _blank(self) -> QIcon:
        pix = QPixmap(THUMBNAIL_PX, THUMBNAIL_PX)
        pix.fill(QColor(128, 128, 128, 60))
        return QIcon(pix)

    def _icon(self, image) -> QIcon:
        """The thumbnail at the gallery's size: small images (32-pixel scans) enlarged with crisp pixels."""
        if image is None:
            return self._placeholder
        pix = QPixmap.fromImage(image)
        if max(pix.width(), pix.height()) < THUMBNAIL_PX:
            pix = pix.scaled(THUMBNAIL_PX, THUMBNAIL_PX, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.FastTransformation)
        return QIcon(pix)

    def show_cell(self, key: tuple, title: str) -> None:
        """Start showing `key`'s images (they arrive through add())."""
        self.key = key
        self.title.setText(title)
        self.list.clear()

    def add(self, thumbs: Thumbnails) -> None:
        if thumbs.key != self.key:
            return  # another cell's images (a late chunk)
        for row, image in thumbs.items:
            right = row["true"] == row["predicted"]
            text = (f"{row['predicted']} · {row['confidence']:.0%}" if right
                    else f"{row['true']} → {row['predicted']}\n{row['confidence']:.0%} sure")
            item = QListWidgetItem(self._icon(image), text)
            name = Path(row["path"]).name if is_file_row(row["path"]) else row["path"]
            item.setToolTip(f"{name}\ntrue: {row['true']}\npredicted: {row['predicted']} ({row['confidence']:.1%})"
                            + ("\nDouble-click to open it in Predict." if is_file_row(row["path"]) else ""))
            item.setData(PATH_ROLE, row["path"])
            item.setData(ROW_ROLE, row)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)

    def clear(self, title: str = "Click a cell of the matrix to see its images.") -> None:
        self.key = None
        self.title.setText(title)
        self.list.clear()

    def count(self) -> int:
        return self.list.count()

    def row(self, i: int) -> dict:
        return self.list.item(i).data(ROW_ROLE)

    def _activated(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        if path and is_file_row(path):
            self.image_activated.emit(path)
