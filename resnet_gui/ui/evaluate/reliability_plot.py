"""A reliability diagram: for each confidence bin, how often the model was right (bars) against how sure it
was (the diagonal). Bars below the line: over-confident; above: under-confident. The expected calibration
error is the count-weighted gap, named in the title."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QWidget

from ..common.plots import make_plot, paint_plot, plot_page
from ..common.theme import follow_palette

BAR_COLOR = (47, 111, 203)
GAP_COLOR = (214, 55, 40)
EMPTY_TEXT = "The reliability diagram appears here after an evaluation."


class ReliabilityPlot(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.stack, self.empty_label, column = plot_page(self, EMPTY_TEXT)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        column.addWidget(self.caption)
        self.plot = make_plot("confidence (%)", "accuracy (%)", grid=0.12)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setXRange(0, 100, padding=0.02)
        self.plot.setYRange(0, 108, padding=0.02)
        column.addWidget(self.plot, 1)
        self.bins: list[dict] = []
        self._items: list = []
        self.ece: float | None = None
        follow_palette(self, self.apply_palette)

    def apply_palette(self) -> None:
        paint_plot(self.plot, self.palette())
        if self.bins:
            self.set_bins(self.bins, self.ece)  # the diagonal and the counts are drawn in the text colour

    def clear(self) -> None:
        self.bins, self.ece = [], None
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        self.stack.setCurrentIndex(0)

    def set_bins(self, bins: list[dict], ece: float | None) -> None:
        """bins: [{lower, upper, count, confidence, accuracy}] (core.metrics.reliability)."""
        bins = list(bins)
        self.clear()
        self.bins, self.ece = bins, ece
        used = [b for b in bins if b.get("count")]
        fg = self.palette().color(QPalette.ColorRole.Text)
        diagonal = self.plot.plot([0, 100], [0, 100], pen=pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))
        self._items.append(diagonal)
        if used:
            x = [50 * (b["lower"] + b["upper"]) for b in used]
            width = 100 * (used[0]["upper"] - used[0]["lower"]) * 0.9
            most = max(b["count"] for b in used)
            # a bin of 3 images says less than one of 300: fainter bars, and each bin's count under it
            brushes = [pg.mkBrush(*BAR_COLOR, int(70 + 170 * (b["count"] / most) ** 0.5)) for b in used]
            bars = pg.BarGraphItem(x=x, height=[100 * b["accuracy"] for b in used], width=width, brushes=brushes,
                                   pen=pg.mkPen(*BAR_COLOR))
            gaps = pg.ScatterPlotItem(x=x, y=[100 * b["confidence"] for b in used], symbol="_", size=width * 3,
                                      pen=pg.mkPen(GAP_COLOR, width=3), brush=pg.mkBrush(GAP_COLOR))
            items = [bars, gaps]
            for xi, b in zip(x, used):
                label = pg.TextItem(f"{b['count']:,}", color=fg, anchor=(0.5, 1.0))
                label.setPos(xi, 100 * b["accuracy"] + 0.5)  # above its bar (the y axis leaves room up to 108)
                items.append(label)
            for item in items:
                self.plot.addItem(item)
                self._items.append(item)
        n = sum(int(b.get("count") or 0) for b in bins)
        over = sum(b["count"] * (b["confidence"] - b["accuracy"]) for b in used)
        lean = "over-confident" if over > 0 else "under-confident"
        self.caption.setText(
            (f"Expected calibration error {ece:.3f} on {n:,} images: its confidence is off by {ece:.1%} on "
             f"average{f', mostly {lean}' if used else ''}. " if ece is not None else "")
            + "Bars: how often it was right in each confidence range (numbers: how many images); red marks: how "
            "sure it was on average. "
            "On the dashed line, “80 % sure” means right 80 % of the time.")
        self.stack.setCurrentIndex(1)
