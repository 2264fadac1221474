"""Live training curves with pyqtgraph: batch loss, per-epoch train/val loss and accuracy."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QWidget

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (230, 110, 20)
BATCH_COLOR = (150, 150, 150)


class TrainingPlots(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget()
        self.acc_plot = pg.PlotWidget()
        for plot, title, ylabel in ((self.loss_plot, "Loss", "loss"), (self.acc_plot, "Accuracy", "%")):
            plot.setTitle(title)
            plot.setLabel("bottom", "epoch")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.addLegend(offset=(-10, 10))
            plot.setMenuEnabled(False)
            plot.setMinimumHeight(180)
            layout.addWidget(plot)
        self.acc_plot.setYRange(0, 100)
        # losses span orders of magnitude (an early validation spike, then a slow decline): log scale
        self.loss_plot.setLogMode(x=False, y=True)
        self.loss_plot.setLabel("left", "loss (log scale)")
        self.batch_curve = self.loss_plot.plot([], [], pen=pg.mkPen(BATCH_COLOR, width=1), name="batch loss")
        self.train_loss = self.loss_plot.plot([], [], pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                              symbolBrush=TRAIN_COLOR, name="train")
        self.val_loss = self.loss_plot.plot([], [], pen=pg.mkPen(VAL_COLOR, width=2), symbol="s", symbolSize=6,
                                            symbolBrush=VAL_COLOR, name="validation")
        self.train_acc = self.acc_plot.plot([], [], pen=pg.mkPen(TRAIN_COLOR, width=2), symbol="o", symbolSize=6,
                                            symbolBrush=TRAIN_COLOR, name="train")
        self.val_acc = self.acc_plot.plot([], [], pen=pg.mkPen(VAL_COLOR, width=2), symbol="s", symbolSize=6,
                                          symbolBrush=VAL_COLOR, name="validation")
        # long runs have tens of thousands of batch points: draw a peak-preserving subsample of what is visible
        self.batch_curve.setDownsampling(auto=True, method="peak")
        self.batch_curve.setClipToView(True)
        self.steps_per_epoch = 1
        self.apply_palette()
        self.clear()

    def apply_palette(self) -> None:
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        for plot in (self.loss_plot, self.acc_plot):
            plot.setBackground(bg)
            item = plot.getPlotItem()
            item.titleLabel.setText(item.titleLabel.text, color=fg)
            for axis in ("left", "bottom"):
                ax = item.getAxis(axis)
                ax.setPen(fg)
                ax.setTextPen(fg)
            if item.legend is not None:
                item.legend.setLabelTextColor(fg)

    def changeEvent(self, event) -> None:  # noqa: N802 - follow palette (theme) changes
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.apply_palette()

    def clear(self) -> None:
        self.batch_x, self.batch_y = [], []
        self.epochs: list[dict] = []
        for curve in (self.batch_curve, self.train_loss, self.val_loss, self.train_acc, self.val_acc):
            curve.setData([], [])

    def start(self, steps_per_epoch: int, history: list[dict] | None = None) -> None:
        self.clear()
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        for record in history or []:
            self.add_epoch(record)

    def add_batches(self, losses: list[list[float]]) -> None:
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
