"""Plots (pyqtgraph) set up one way for every tab: the Train tab's live curves, the Runs tab's comparison,
the learning-rate finder and the reliability diagram.

    stack, label, column = plot_page(widget, "Curves appear here after a run.")  # the sentence, then a page
    plot = make_plot("epoch", "loss (log scale)")     # labels, grid, no context menu, no SI prefixes
    paint_plot(plot, widget.palette(), "Loss")        # background, axes and title in the palette's colours
    class TrainingPlots(EpochPlots): ...              # loss (log scale) and accuracy per epoch, side by side

Colours follow the palette through theme.follow_palette.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from .widgets import empty_state_stack


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class EpochAxis(pg.AxisItem):
    """An axis of whole epochs: ticks at 1, 2, 5, 10 … epochs apart, never at 0.5 or 1.5."""

    def tickSpacing(self, min_val: float, max_val: float, size: float):
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(min_val, max_val, size) if spacing >= 1]
        return levels or [(1.0, 0.0)]


class LogAxis(pg.AxisItem):
    """A log-scale axis that labels only 1, 2 and 5 times a power of ten (the other ticks stay, unlabelled), so
    that a loss spanning a decade or two is not a column of crowded numbers."""

    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        if len(values) <= 4:
            return strings
        mantissas = [round(10 ** (v % 1), 6) for v in values]
        return [text if round(m) in (1, 2, 5) and abs(m - round(m)) < 1e-3 else ""
                for text, m in zip(strings, mantissas)]


def plot_page(owner: QWidget, empty_text: str) -> tuple[QStackedWidget, QLabel, QVBoxLayout]:
    """Fill `owner` with a stack: a sentence (`empty_text`: what appears here, and when) until there is something
    to show, then a page for the plots. Returns (the stack, the sentence's label, the page's column, no margins);
    the caller fills the column and shows the page with stack.setCurrentIndex(1)."""
    stack, label = empty_state_stack(owner, empty_text)
    page = QWidget()
    column = QVBoxLayout(page)
    column.setContentsMargins(0, 0, 0, 0)
    stack.addWidget(page)
    return stack, label, column


def make_plot(bottom: str, left: str, *, min_height: int = 180, grid: float = 0.25, epochs: bool = False,
              log_left: bool = False, bottom_axis: pg.AxisItem | None = None) -> pg.PlotWidget:
    """A plot with axis labels and a light grid, without pyqtgraph's context menu or its "(x0.001)" SI prefixes
    on the axes. epochs: the bottom axis counts whole epochs; log_left: the left axis is a log scale;
    bottom_axis: a bottom axis of the caller's (the learning-rate finder's rate axis)."""
    axes = {}
    if epochs:
        axes["bottom"] = EpochAxis("bottom")
    if bottom_axis is not None:
        axes["bottom"] = bottom_axis
    if log_left:
        axes["left"] = LogAxis("left")
    plot = pg.PlotWidget(axisItems=axes)
    if log_left:
        plot.setLogMode(x=False, y=True)
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    plot.showGrid(x=True, y=True, alpha=grid)
    plot.setMenuEnabled(False)
    plot.setMinimumHeight(min_height)
    for axis in ("left", "bottom"):
        plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
    return plot


def paint_plot(plot: pg.PlotWidget, palette: QPalette, title: str | None = None) -> None:
    """The plot's background, axes and title in the colours of `palette` (light or dark)."""
    fg = palette.color(QPalette.ColorRole.Text)
    plot.setBackground(palette.color(QPalette.ColorRole.Base))
    if title is not None:
        plot.setTitle(title, color=fg)
    for axis in ("left", "bottom"):
        ax = plot.getPlotItem().getAxis(axis)
        ax.setPen(fg)
        ax.setTextPen(fg)


class EpochPlots(QWidget):
    """Loss (log scale) and accuracy (%) against the epoch, side by side, under a line that names the curves in
    their colours (no legend box covering them); a sentence stands in their place until there is something to
    show. Subclasses draw the curves, say what the key line reads (key()), and call follow_palette(self,
    self.apply_palette) once they are built."""

    def __init__(self, empty_text: str, min_height: int, parent=None):
        super().__init__(parent)
        self.stack, self.empty_label, column = plot_page(self, empty_text)
        column.setSpacing(2)
        self.key_label = QLabel()
        self.key_label.setTextFormat(Qt.TextFormat.RichText)  # what goes in it is escaped
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.key_label.setWordWrap(True)
        column.addWidget(self.key_label)
        row = QHBoxLayout()
        column.addLayout(row, 1)
        # losses span orders of magnitude (an early validation spike, then a slow decline): log scale
        self.loss_plot = make_plot("epoch", "loss (log scale)", min_height=min_height, epochs=True, log_left=True)
        self.acc_plot = make_plot("epoch", "accuracy (%)", min_height=min_height, epochs=True)
        row.addWidget(self.loss_plot)
        row.addWidget(self.acc_plot)

    def key(self) -> str:
        """The key line above the plots (rich text)."""
        return ""

    def apply_palette(self) -> None:
        for plot, title in ((self.loss_plot, "Loss"), (self.acc_plot, "Accuracy")):
            paint_plot(plot, self.palette(), title)
        self.key_label.setText(self.key())
