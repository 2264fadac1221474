"""The confusion matrix with its controls: the class order (as the model has them, or the most-missed first) and
zoom (buttons, or Ctrl+wheel over the matrix; scroll bars when zoomed in), so 200 or 1,000 classes stay readable."""
from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from .confusion_matrix_view import ConfusionMatrixView

ZOOMS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class MatrixPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        tools = QHBoxLayout()
        self.order_combo = QComboBox()
        self.order_combo.addItem("Classes in order", "class")
        self.order_combo.addItem("Most missed first", "errors")
        self.order_combo.setToolTip("Sort rows and columns by how many of each class's images were called something "
                                    "else: the classes the model confuses gather in the top-left corner")
        self.order_combo.currentIndexChanged.connect(lambda _i: self.view.set_order(self.order_combo.currentData()))
        tools.addWidget(self.order_combo)
        tools.addStretch(1)
        self.zoom_label = QLabel()
        tools.addWidget(self.zoom_label)
        self.out_button = QPushButton("−")
        self.in_button = QPushButton("+")
        self.fit_button = QPushButton("Fit")
        for button, tip, step in ((self.out_button, "Zoom out (Ctrl+wheel)", -1), (self.in_button,
                                  "Zoom in (Ctrl+wheel over the matrix): class names appear when there is room", 1)):
            button.setToolTip(tip)
            button.setFixedWidth(32)
            button.clicked.connect(lambda _c=False, s=step: self.zoom_by(s))
            tools.addWidget(button)
        self.fit_button.setToolTip("The whole matrix in the window")
        self.fit_button.clicked.connect(lambda: self.set_zoom(1))
        tools.addWidget(self.fit_button)
        column.addLayout(tools)
        self.view = ConfusionMatrixView()
        self.view.zoom_requested.connect(self.zoom_by)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.view)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        column.addWidget(self.scroll, 1)
        self.zoom = 1.0
        self.set_matrix([], [])

    def set_matrix(self, class_names: list[str], matrix: list[list[int]]) -> None:
        self.view.set_matrix(class_names, matrix)
        many = len(class_names) > 12
        for w in (self.order_combo, self.out_button, self.in_button, self.fit_button, self.zoom_label):
            w.setVisible(many)
        self.set_zoom(1)

    def zoom_by(self, step: int, at: QPoint | None = None) -> None:
        i = min(range(len(ZOOMS)), key=lambda k: abs(ZOOMS[k] - self.zoom))
        self.set_zoom(ZOOMS[max(0, min(len(ZOOMS) - 1, i + step))], at)

    def set_zoom(self, zoom: float, at: QPoint | None = None) -> None:
        """At zoom 1 the matrix fits the panel; at zoom z it is z times larger, with scroll bars, keeping the point
        under the mouse (or the centre) where it was."""
        old = self.zoom
        self.zoom = float(zoom)
        viewport = self.scroll.viewport().size()
        h, v = self.scroll.horizontalScrollBar(), self.scroll.verticalScrollBar()
        anchor = at or QPoint(h.value() + viewport.width() // 2, v.value() + viewport.height() // 2)
        if self.zoom <= 1:
            self.view.setMinimumSize(260, 260)
        else:
            self.view.setMinimumSize(int(viewport.width() * self.zoom), int(viewport.height() * self.zoom))
        self.view.adjustSize()
        ratio = self.zoom / old if old else 1
        h.setValue(int(anchor.x() * ratio - (anchor.x() - h.value())))
        v.setValue(int(anchor.y() * ratio - (anchor.y() - v.value())))
        self.zoom_label.setText(f"{self.zoom:g}×")
        self.out_button.setEnabled(self.zoom > 1)
        self.in_button.setEnabled(self.zoom < ZOOMS[-1])
