"""Live training curves with pyqtgraph: batch loss, per-epoch training/validation loss and accuracy.

Before a run, a sentence stands where the curves will be. The x-axis spans the run's epochs; the loss
axis is logarithmic without SI prefixes; a line above the plots names the curves in their colours (no
legend box covering them)."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..common import theme
from ..common.widgets import empty_state_stack

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (230, 110, 20)
BATCH_COLOR = (150, 150, 150)
EMPTY_TEXT = "The loss and accuracy curves appear here once training starts."


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class TrainingPlots(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.stack, self.empty_label = empty_state_stack(self, EMPTY_TEXT)
        self.empty_label.setMinimumHeight(180)
        curves = QWidget()
        column = QVBoxLayout(curves)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        self.key_label = QLabel()  # names the curves in their colours, above them rather than over them
        self.key_label.setTextFormat(Qt.TextFormat.RichText)
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(self.key_label)
        layout = QHBoxLayout()
        column.addLayout(layout, 1)
        self.loss_plot = pg.PlotWidget()
        self.acc_plot = pg.PlotWidget()
        for plot, ylabel in ((self.loss_plot, "loss (log scale)"), (self.acc_plot, "accuracy (%)")):
            plot.setLabel("bottom", "epoch")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMenuEnabled(False)
            plot.setMinimumHeight(180)
            for axis in ("left", "bottom"):
                plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)  # no "(x0.001)" on the labels
            layout.addWidget(plot)
        self.stack.addWidget(curves)
        self.acc_plot.setYRange(0, 100)
        # losses span orders of magnitude (an early validation spike, then a slow decline): log scale
        self.loss_plot.setLogMode(x=False, y=True)
        self.batch_curve = self.loss_plot.plot([], [], pen=pg.mkPen(BATCH_COLOR, width=1))
        self.train_loss = self.loss_plot.plot([], [], pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                              symbolBrush=TRAIN_COLOR)
        self.val_loss = self.loss_plot.plot([], [], pen=pg.mkPen(VAL_COLOR, width=2), symbol="s", symbolSize=6,
                                            symbolBrush=VAL_COLOR)
        self.train_acc = self.acc_plot.plot([], [], pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                            symbolBrush=TRAIN_COLOR)
        self.val_acc = self.acc_plot.plot([], [], pen=pg.mkPen(VAL_COLOR, width=2), symbol="s", symbolSize=6,
                                          symbolBrush=VAL_COLOR)
        # long runs have tens of thousands of batch points: draw a peak-preserving subsample of what is visible
        self.batch_curve.setDownsampling(auto=True, method="peak")
        self.batch_curve.setClipToView(True)
        self.steps_per_epoch = 1
        self.apply_palette()
        theme.notifier().changed.connect(self.apply_palette)
        self.clear()

    @staticmethod
    def _key() -> str:
        parts = [f'<span style="color:{_hex(TRAIN_COLOR)}">●&nbsp;training</span>',
                 f'<span style="color:{_hex(VAL_COLOR)}">■&nbsp;validation</span>',
                 f'<span style="color:{_hex(BATCH_COLOR)}">—&nbsp;each batch (loss)</span>']
        return "&nbsp;&nbsp;&nbsp;".join(parts)

    def apply_palette(self) -> None:
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        self.key_label.setText(self._key())
        for plot, name in ((self.loss_plot, "Loss"), (self.acc_plot, "Accuracy")):
            plot.setBackground(bg)
            plot.setTitle(name, color=fg)
            for axis in ("left", "bottom"):
                ax = plot.getPlotItem().getAxis(axis)
                ax.setPen(fg)
                ax.setTextPen(fg)

    def changeEvent(self, event) -> None:  # follow palette (theme) changes
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.apply_palette()

    def clear(self) -> None:
        self.batch_x, self.batch_y = [], []
        self.epochs: list[dict] = []
        for curve in (self.batch_curve, self.train_loss, self.val_loss, self.train_acc, self.val_acc):
            curve.setData([], [])
        self.stack.setCurrentIndex(0)

    def start(self, steps_per_epoch: int, history=None, epochs: int = 1) -> None:
        """A run begins: its epochs set the x-axis; a resumed run's earlier epochs are drawn at once."""
        self.clear()
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.stack.setCurrentIndex(1)
        for plot in (self.loss_plot, self.acc_plot):
            # limits first: the range is clamped to the limits in force (a longer run after a short one stayed
            # clipped to the short run's epochs)
            plot.setLimits(xMin=-0.5, xMax=max(1, int(epochs)) + 0.5)
            plot.setXRange(0, max(1, int(epochs)), padding=0.02)
        for record in history or []:
            self.add_epoch(record)

    def add_batches(self, losses) -> None:
        if not losses:
            return
        for step, loss in losses:
            self.batch_x.append(step / self.steps_per_epoch)
            self.batch_y.append(loss)
        self.batch_curve.setData(self.batch_x, self.batch_y)

    def add_epoch(self, record) -> None:
        """One epoch's figures: an Epoch event or a history row (dict) of a resumed run."""
        if not isinstance(record, dict):
            record = {k: getattr(record, k) for k in ("epoch", "train_loss", "val_loss", "train_accuracy",
                                                      "val_accuracy")}
        self.epochs.append(record)
        x = [r["epoch"] for r in self.epochs]
        self.train_loss.setData(x, [r["train_loss"] for r in self.epochs])
        self.val_loss.setData(x, [r["val_loss"] for r in self.epochs])
        self.train_acc.setData(x, [100 * r["train_accuracy"] for r in self.epochs])
        self.val_acc.setData(x, [100 * r["val_accuracy"] for r in self.epochs])

    def point_counts(self) -> dict[str, int]:
        return {"batch": len(self.batch_x), "epochs": len(self.epochs)}
