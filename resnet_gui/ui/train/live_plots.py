"""Live training curves with pyqtgraph: batch loss, per-epoch training/validation loss and accuracy.

Before a run, a sentence stands where the curves will be. The x-axis spans the run's epochs; the plots
themselves, their colours and the key line above them are common.plots.EpochPlots'."""
from __future__ import annotations

import pyqtgraph as pg

from ..common.plots import EpochPlots, hex_color
from ..common.theme import follow_palette

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (230, 110, 20)
BATCH_COLOR = (150, 150, 150)
EMPTY_TEXT = "The loss and accuracy curves appear here once training starts."


class TrainingPlots(EpochPlots):
    def __init__(self, parent=None):
        pg.setConfigOptions(antialias=True)
        super().__init__(EMPTY_TEXT, 180, parent)
        self.empty_label.setMinimumHeight(180)
        self.acc_plot.setYRange(0, 100)
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
        follow_palette(self, self.apply_palette)
        self.clear()

    def key(self) -> str:
        parts = [f'<span style="color:{hex_color(TRAIN_COLOR)}">●&nbsp;training</span>',
                 f'<span style="color:{hex_color(VAL_COLOR)}">■&nbsp;validation</span>',
                 f'<span style="color:{hex_color(BATCH_COLOR)}">—&nbsp;each batch (loss)</span>']
        return "&nbsp;&nbsp;&nbsp;".join(parts)

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
