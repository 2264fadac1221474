"""A row of headline figures, each a large value over a short caption ("93.1 %" / "accuracy"), with a
tooltip that says what it means."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..common.widgets import big_font


def evaluation_cards(evaluation) -> list[tuple[str, str, str]]:
    """The headline figures of an evaluation (core.evaluation), as set_figures takes them: accuracy, balanced
    accuracy, the largest class's share, the first top-k accuracy, the calibration error and the images."""
    f = evaluation.figures
    cards = [("accuracy", f"{f.accuracy:.1%}", f"{round(f.accuracy * f.n):,} of {f.n:,} images right"),
             ("balanced accuracy", f"{f.balanced_accuracy:.1%}",
              "The mean of the per-class recalls: every class counts the same, however many images it has"),
             ("largest class", f"{f.majority_baseline:.1%}",
              "What always answering the largest class would score: accuracy should be well above it")]
    for k, value in sorted(f.top_k_accuracy.items())[:1]:
        cards.append((f"top-{k} accuracy", f"{value:.1%}", f"The true class is among the {k} most likely"))
    cards.append(("calibration error", f"{f.ece:.3f}", "Expected calibration error (15 bins): how far "
                  "“x % sure” is from being right x % of the time; 0 is perfect"))
    cards.append(("images", f"{f.n:,}", evaluation.data + (" (with mirror images)" if evaluation.tta else "")))
    return cards


class FigureCards(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)
        self._cards: dict[str, tuple[QFrame, QLabel]] = {}

    def set_figures(self, figures: list[tuple[str, str, str]]) -> None:
        """[(caption, value, tooltip)], left to right."""
        self.clear()
        for caption, value, tip in figures:
            card = QFrame()
            card.setFrameShape(QFrame.Shape.StyledPanel)
            card.setToolTip(tip)
            column = QVBoxLayout(card)
            column.setContentsMargins(10, 6, 10, 6)
            column.setSpacing(0)
            number = QLabel(value)
            number.setFont(big_font(self, 1.6))
            number.setTextFormat(Qt.TextFormat.PlainText)
            words = QLabel(caption)
            words.setTextFormat(Qt.TextFormat.PlainText)
            words.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            column.addWidget(number)
            column.addWidget(words)
            self._layout.addWidget(card)
            self._cards[caption] = (card, number)
        self._layout.addStretch(1)

    def value(self, caption: str) -> str | None:
        card = self._cards.get(caption)
        return card[1].text() if card else None

    def clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._cards = {}
