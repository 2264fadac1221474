"""The single-image view of the Predict tab: the image, its file name, and the answer in one of three
states (sure: the class; not sure: the top candidates; unfamiliar: "this doesn't look like anything this
model was trained on", the top guess small), the runners-up, and a toggle that lays the Grad-CAM heat map
of the predicted class, or of any class picked from the top classes, over the image."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from ..common.widgets import Banner, ImagePreview, ToggleButton, TopKBars, big_font, plain_label
from .answer import DEFAULT_THRESHOLD, SURE, UNSURE, candidates, confidence_words, threshold_words, unfamiliar_words
from .session import ImageResult

HINT = "Drop an image or a folder here,\npaste one (Ctrl+V), or use Open image…"
WELCOME = "Pick an image to see what the model thinks it is, or press Try a sample."
UNFAMILIAR_TITLE = "This doesn't look like anything this model was trained on"


def display_name(name: str) -> str:
    """A file's name without its folder; labels such as "pasted image" as they are."""
    return Path(name).name if ("/" in name or os.sep in name) else name


class SingleImageView(QSplitter):
    explain_requested = Signal(int)      # the class whose heat map to show (its index: names may repeat)
    explain_cleared = Signal()           # the heat map was switched off

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setChildrenCollapsible(False)
        self.preview = ImagePreview(HINT)
        self.addWidget(self.preview)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(16, 4, 4, 4)
        layout.setSpacing(8)
        self.file_label = plain_label()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.class_label = plain_label(big_font(self, 2.4))
        self.class_label.hide()  # appears with the first result
        self.class_label.setAccessibleName("Predicted class")
        self.confidence_label = plain_label(big_font(self, 1.3, bold=False))
        self.confidence_label.setText(WELCOME)
        self.guess_label = plain_label()  # the unfamiliar state's top guess, small
        self.guess_label.hide()
        self.error_banner = Banner()
        self.trust_banner = Banner()        # how far the model's answers can be trusted, beside every answer
        self.trust_banner.setAccessibleName("What the model's answers are worth")
        self.topk_title = QLabel("Top classes")
        self.topk_title.setFont(big_font(self, 1.0))  # bold; no style sheet, so it follows theme changes
        self.topk_title.hide()
        self.topk = TopKBars()
        self.topk.setToolTip("Click a class to see where the model found evidence for it")
        self.topk.row_clicked.connect(self.explain_class)
        explain_row = QHBoxLayout()
        self.explain_toggle = ToggleButton("Show why (heat map)")
        self.explain_toggle.setToolTip("Lay a heat map over the image: where the model found the evidence for the "
                                       "chosen class (Grad-CAM)")
        self.explain_toggle.setEnabled(False)
        self.explain_toggle.toggled.connect(self._explain_toggled)
        self.explain_combo = QComboBox()
        self.explain_combo.setToolTip("The class to explain: the answer, or any of the top classes")
        self.explain_combo.setEnabled(False)
        self.explain_combo.currentIndexChanged.connect(self._explain_class_changed)
        explain_row.addWidget(self.explain_toggle)
        explain_row.addWidget(QLabel("for"))
        explain_row.addWidget(self.explain_combo, 1)
        self.explain_caption = plain_label()
        self.explain_caption.hide()
        for w in (self.file_label, self.class_label, self.confidence_label, self.guess_label, self.trust_banner,
                  self.error_banner, self.topk_title, self.topk):
            layout.addWidget(w)
        layout.addSpacing(8)
        layout.addLayout(explain_row)
        layout.addWidget(self.explain_caption)
        layout.addStretch(1)
        panel.setMinimumWidth(300)
        self.addWidget(panel)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.shown_name: str | None = None  # the image whose name is on screen
        self.result: ImageResult | None = None
        self.state: str | None = None       # SURE, UNSURE or UNFAMILIAR of the result on screen
        self.threshold = DEFAULT_THRESHOLD
        self.knows = ""                     # what the model knows, in a few words
        self.trust: tuple = ()              # (text, kind, actions) of the trust banner for the model's answers
        self.overlay_label: str | None = None  # the class whose heat map is on the image

    def show_waiting(self, name: str | None, message: str) -> None:
        """A request for `name` is on its way (classifying, or waiting for PyTorch or the model)."""
        if name is not None:
            self._set_name(name)
            self.error_banner.clear_message()
        self.confidence_label.setText(message)

    def show_result(self, result: ImageResult, threshold: float | None = None, knows: str | None = None,
                    trust: tuple = ()) -> None:
        """`trust`: (text, banner kind, actions) shown beside the answer (answer.trust_words)."""
        self._set_name(result.name)
        if threshold is not None:
            self.threshold = threshold
        if knows is not None:
            self.knows = knows
        self.trust = tuple(trust)
        if result.error is not None:
            self.result = None
            self.preview.clear_image("This file could not be shown.")
            self.show_error(result.error)
            return
        self.result = result
        self.error_banner.clear_message()
        if self.trust:
            self.trust_banner.show_message(*self.trust)
        self.overlay_label = None
        self.preview.set_image(result.preview)
        self._show_answer()
        self.explain_combo.blockSignals(True)
        self.explain_combo.clear()
        pred = result.prediction
        for (label, _p), index in zip(pred.top_k, pred.top_indices):
            self.explain_combo.addItem(label, index)
        self.explain_combo.blockSignals(False)
        self.explain_toggle.setEnabled(True)
        self.explain_combo.setEnabled(True)
        if self.explain_toggle.isChecked():
            self._request_explanation()

    def set_threshold(self, threshold: float) -> None:
        """A new "not sure below" threshold: the answer on screen is read again (no new prediction)."""
        self.threshold = threshold
        if self.result is not None:
            self._show_answer()

    def _show_answer(self) -> None:
        pred = self.result.prediction
        state = pred.state(self.threshold)
        self.state = state
        w, h = self.result.size
        self.class_label.show()
        self.guess_label.hide()
        self.topk.set_rows(pred.top_k)
        self.topk_title.setText("Top classes")
        show_bars = len(pred.top_k) > 1
        if state == SURE:
            self.class_label.setFont(big_font(self, 2.4))
            self.class_label.setText(pred.label)
            sure = confidence_words(pred.confidence, pred, self.threshold)
            self.confidence_label.setText(f"{sure} sure · {w}×{h} px")
        elif state == UNSURE:
            self.class_label.setFont(big_font(self, 2.0))
            self.class_label.setText("Not sure")
            self.confidence_label.setText(f"Maybe {candidates(pred, self.threshold)}. No class reaches "
                                          f"{threshold_words(self.threshold)}, the threshold set above.")
            self.topk_title.setText("Top candidates")
            show_bars = True
        else:
            self.class_label.setFont(big_font(self, 1.5))
            self.class_label.setText(UNFAMILIAR_TITLE)
            why = getattr(pred, "unfamiliar_why", None)
            self.confidence_label.setText(unfamiliar_words(why, self.knows))
            familiarity = getattr(pred, "familiarity", None)
            similar = f" · familiarity {familiarity:.0%}" if isinstance(familiarity, (int, float)) else ""
            self.guess_label.setText(f"Top guess: {pred.label} ({pred.confidence:.1%}){similar} · {w}×{h} px")
            self.guess_label.show()
            show_bars = False
        self.topk_title.setVisible(show_bars)
        self.topk.setVisible(show_bars)

    # ---- Grad-CAM ---------------------------------------------------------------------------------
    def explain_class(self, row: int) -> None:
        """Show the heat map of the top classes' `row` (the bars and the class list are in the same order)."""
        if not 0 <= row < self.explain_combo.count() or self.result is None:
            return
        self.explain_combo.setCurrentIndex(row)
        if not self.explain_toggle.isChecked():
            self.explain_toggle.setChecked(True)  # requests it

    def _explain_toggled(self, on: bool) -> None:
        if on:
            self._request_explanation()
        else:
            self.explain_cleared.emit()
            self.overlay_label = None
            self.explain_caption.hide()
            if self.result is not None:
                self.preview.set_image(self.result.preview)

    def _explain_class_changed(self, *_) -> None:
        if self.explain_toggle.isChecked():
            self._request_explanation()

    def _request_explanation(self) -> None:
        index = self.explain_combo.currentData()
        if self.result is None or index is None:
            return
        self.explain_caption.setText(f"Finding where the evidence for “{self.explain_combo.currentText()}” is…")
        self.explain_caption.show()
        self.explain_requested.emit(index)

    def show_explanation(self, cam) -> None:
        """A heat map arrived (explain.CamResult): shown when it still fits the image and class on screen."""
        if (self.result is None or cam.name != self.result.name or not self.explain_toggle.isChecked()
                or cam.class_index != self.explain_combo.currentData()):
            return
        self.overlay_label = cam.label
        self.preview.set_image(cam.overlay)
        self.explain_caption.setText(f"Where the model found evidence for “{cam.label}”: red strongest, blue none "
                                     "(Grad-CAM)." + (" The dimmed edges were cropped away before the model looked."
                                                      if cam.cropped else ""))
        self.explain_caption.show()

    def explanation_failed(self, message: str) -> None:
        self.explain_caption.setText(f"The heat map could not be made: {message}")
        self.explain_caption.show()

    # ---- errors and notices -----------------------------------------------------------------------
    def show_error(self, message: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """The request failed: no class is shown, the message says why."""
        self.class_label.hide()
        self.guess_label.hide()
        self.trust_banner.clear_message()
        self.confidence_label.setText("")
        self.topk.set_rows([])
        self.topk_title.hide()
        self.state = None
        self.explain_toggle.setEnabled(False)
        self.explain_combo.setEnabled(False)
        self.explain_caption.hide()
        self.error_banner.show_message(message, "error", actions)

    def show_notice(self, message: str, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """Something to know that does not replace the result on screen (a failed paste, no samples)."""
        self.error_banner.show_message(message, "warning", actions)

    def _set_name(self, name: str) -> None:
        self.shown_name = name
        self.file_label.setText(display_name(name))
        self.file_label.setToolTip(name)
