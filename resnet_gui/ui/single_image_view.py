"""The single-image view of the Predict tab: the image, its file name, the class, how sure, the runners-up."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from .predict_session import ImageResult
from .widgets import Banner, ImagePreview, TopKBars, big_font

HINT = "Drop an image or a folder here,\npaste one (Ctrl+V), or use Open image…"
WELCOME = "Pick an image to see what the model thinks it is, or press Try a sample."


def display_name(name: str) -> str:
    """A file's name without its folder; labels such as "pasted image" as they are."""
    return Path(name).name if ("/" in name or os.sep in name) else name


class SingleImageView(QSplitter):
    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setChildrenCollapsible(False)
        self.preview = ImagePreview(HINT)
        self.addWidget(self.preview)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(16, 4, 4, 4)
        layout.setSpacing(8)
        self.file_label = QLabel("")
        self.file_label.setTextFormat(Qt.TextFormat.PlainText)
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.class_label = QLabel("")
        self.class_label.setTextFormat(Qt.TextFormat.PlainText)
        self.class_label.hide()  # appears with the first result
        self.class_label.setFont(big_font(self, 2.4))
        self.class_label.setWordWrap(True)
        self.class_label.setAccessibleName("Predicted class")
        self.confidence_label = QLabel(WELCOME)
        self.confidence_label.setFont(big_font(self, 1.3, bold=False))
        self.confidence_label.setWordWrap(True)
        self.error_banner = Banner()
        self.topk_title = QLabel("Top classes")
        self.topk_title.setFont(big_font(self, 1.0))  # bold; no style sheet, so it follows theme changes
        self.topk_title.hide()
        self.topk = TopKBars()
        for w in (self.file_label, self.class_label, self.confidence_label, self.error_banner, self.topk_title,
                  self.topk):
            layout.addWidget(w)
        layout.addStretch(1)
        panel.setMinimumWidth(300)
        self.addWidget(panel)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.shown_name: str | None = None  # the image whose name is on screen

    def show_waiting(self, name: str | None, message: str) -> None:
        """A request for `name` is on its way (classifying, or waiting for PyTorch or the model)."""
        if name is not None:
            self._set_name(name)
            self.error_banner.clear_message()
        self.confidence_label.setText(message)

    def show_result(self, result: ImageResult) -> None:
        self._set_name(result.name)
        if result.error is not None:
            self.preview.clear_image("This file could not be shown.")
            self.show_error(result.error)
            return
        pred = result.prediction
        self.error_banner.clear_message()
        self.preview.set_image(result.preview)
        self.class_label.setText(pred.label)
        self.class_label.show()
        w, h = result.size
        self.confidence_label.setText(f"{pred.confidence:.1%} sure · {w}×{h} px")
        self.topk_title.setVisible(len(pred.top_k) > 1)
        self.topk.set_rows(pred.top_k)

    def show_error(self, message: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """The request failed: no class is shown, the message says why."""
        self.class_label.hide()
        self.confidence_label.setText("")
        self.topk.set_rows([])
        self.topk_title.hide()
        self.error_banner.show_message(message, "error", actions)

    def show_notice(self, message: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """Something to know that does not replace the result on screen (a failed paste, no samples)."""
        self.error_banner.show_message(message, "warning", actions)

    def _set_name(self, name: str) -> None:
        self.shown_name = name
        self.file_label.setText(display_name(name))
        self.file_label.setToolTip(name)
