"""Several runs' curves on one pair of plots: loss (log scale) and accuracy per epoch, one colour per run,
validation solid with squares, training dashed. A line above the plots names the runs in their colours
(the plots and the key line are common.plots.EpochPlots')."""
from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from ..common.plots import EpochPlots, hex_color
from ..common.theme import follow_palette

# Tableau-style colours that read on light and dark backgrounds, in the order runs are given
RUN_COLORS = [(31, 119, 180), (230, 110, 20), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
              (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
FEW_EPOCHS = 12   # up to this many epochs, a tick for every epoch
EMPTY_TEXT = "Select two or more runs (Ctrl+click or Shift+click) to overlay their curves and compare their settings."


def _series(history: list[dict], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """(epochs, values) for the rows that have a finite number under `key` (others are left out)."""
    xs, ys = [], []
    for row in history:
        epoch, value = row.get("epoch"), row.get(key)
        if isinstance(epoch, (int, float)) and isinstance(value, (int, float)) and value == value \
                and abs(value) != float("inf") and not (key.endswith("loss") and value <= 0):
            xs.append(float(epoch))
            ys.append(float(value) * scale)
    return xs, ys


class RunCurves(EpochPlots):
    def __init__(self, parent=None):
        super().__init__(EMPTY_TEXT, 160, parent)
        self.names: list[str] = []
        self.curves: dict[str, list] = {}   # run name -> its plotted items
        follow_palette(self, self.apply_palette)

    def clear(self, message: str = EMPTY_TEXT) -> None:
        for plot in (self.loss_plot, self.acc_plot):
            plot.clear()
        self.names, self.curves = [], {}
        self.empty_label.setText(message)
        self.stack.setCurrentIndex(0)

    def set_runs(self, histories: dict[str, list[dict]]) -> None:
        """Draw each run's history (rows with epoch, train/val loss and accuracy), in the order given."""
        self.clear()
        if not histories:
            return
        most = 1
        for i, (name, history) in enumerate(histories.items()):
            color = RUN_COLORS[i % len(RUN_COLORS)]
            items = []
            for plot, key, scale in ((self.loss_plot, "loss", 1.0), (self.acc_plot, "accuracy", 100.0)):
                for split, style, symbol in (("val", Qt.PenStyle.SolidLine, "s"),
                                             ("train", Qt.PenStyle.DashLine, None)):
                    xs, ys = _series(history, f"{split}_{key}", scale)
                    if xs:
                        most = max(most, int(max(xs)))
                    items.append(plot.plot(xs, ys, pen=pg.mkPen(color, width=2, style=style), symbol=symbol,
                                           symbolSize=6, symbolBrush=color, symbolPen=color,
                                           name=f"{name} {split} {key}"))
            self.curves[name] = items
            self.names.append(name)
        for plot in (self.loss_plot, self.acc_plot):
            plot.setXRange(1 if most > 1 else 0, most, padding=0.05)
            axis = plot.getPlotItem().getAxis("bottom")
            if most <= FEW_EPOCHS:
                axis.setTickSpacing(1, 1)  # whole epochs, not 0.5, 1.5 …
            else:
                axis.setTickSpacing()      # automatic
        self.acc_plot.setYRange(0, 100)
        self.key_label.setText(self.key())
        self.stack.setCurrentIndex(1)

    def key(self) -> str:
        fg = hex_color(self.palette().color(QPalette.ColorRole.Text).getRgb()[:3])
        runs = [f'<span style="color:{hex_color(RUN_COLORS[i % len(RUN_COLORS)])}">■&nbsp;{html.escape(name)}</span>'
                for i, name in enumerate(self.names)]
        style = f'<span style="color:{fg}">solid: validation&nbsp;&nbsp;·&nbsp;&nbsp;dashed: training</span>'
        return "&nbsp;&nbsp;&nbsp;".join(runs + [style]) if runs else ""

    def point_counts(self) -> dict[str, int]:
        """Validation epochs drawn per run (for tests and scripts)."""
        return {name: len(items[0].xData) if items[0].xData is not None else 0 for name, items in self.curves.items()}
