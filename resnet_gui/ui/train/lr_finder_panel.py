"""The learning-rate finder's panel in the Train tab: progress and Cancel while the range test runs, then the
smoothed loss against the learning rate (log axis) with the suggestion marked. A click on the mark, or anywhere
on the curve, chooses that rate (the nearest rate tried); "Use" takes the suggestion."""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..common.plots import make_plot, paint_plot
from ..common.theme import follow_palette
from ..common.widgets import Banner

CURVE_COLOR = (31, 119, 180)
MARK_COLOR = (214, 39, 40)
CHOSEN_COLOR = (44, 160, 44)


def format_lr(lr: float) -> str:
    """A learning rate as people write it: 0.003, 2.5e-05."""
    return f"{lr:.2g}" if lr >= 1e-3 else f"{lr:.1e}"


class LrFinderPanel(QWidget):
    lr_chosen = Signal(float)      # a rate to put in the learning-rate field
    cancel_requested = Signal()
    close_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.title = QLabel("Learning-rate finder")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        top.addWidget(self.title)
        top.addStretch(0)  # takes the room the progress bar leaves when hidden, so the buttons keep their size
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        top.addWidget(self.progress, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        top.addWidget(self.cancel_button)
        self.use_button = QPushButton("Use suggestion")
        self.use_button.clicked.connect(self.use_suggestion)
        top.addWidget(self.use_button)
        self.close_button = QPushButton("Hide")
        self.close_button.setToolTip("Hide the learning-rate finder (Find learning rate brings it back)")
        self.close_button.clicked.connect(self.close_requested.emit)
        top.addWidget(self.close_button)
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.note)
        self.plot = make_plot("learning rate (log scale)", "loss (smoothed)", min_height=200)
        self.plot.setLogMode(x=True, y=False)
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(CURVE_COLOR, width=2))
        self.chosen_mark = self.plot.plot([], [], pen=None, symbol="o", symbolSize=11, symbolBrush=CHOSEN_COLOR,
                                          symbolPen=pg.mkPen(CHOSEN_COLOR))
        self.mark = self.plot.plot([], [], pen=None, symbol="star", symbolSize=18, symbolBrush=MARK_COLOR,
                                   symbolPen=pg.mkPen(MARK_COLOR))
        self.mark_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(MARK_COLOR, width=1,
                                                                                style=Qt.PenStyle.DashLine))
        self.mark_line.hide()
        self.plot.addItem(self.mark_line, ignoreBounds=True)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        layout.addWidget(self.plot, 1)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.suggested: float | None = None
        self.chosen: float | None = None
        follow_palette(self, lambda: paint_plot(self.plot, self.palette()))
        self._idle()

    # ---- states -----------------------------------------------------------------------------------
    def running(self) -> bool:
        """The range test runs (begin() was called and it has not ended)."""
        return not self.cancel_button.isHidden()

    def _idle(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.use_button.setVisible(self.suggested is not None)

    def begin(self, steps: int) -> None:
        """The range test starts: progress and Cancel; the previous curve goes."""
        self.banner.clear_message()
        self.lrs, self.losses, self.suggested, self.chosen = [], [], None, None
        for item in (self.curve, self.mark, self.chosen_mark):
            item.setData([], [])
        self.mark_line.hide()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing…")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.use_button.hide()
        self.note.setText(f"Training for up to {steps} steps while raising the learning rate from 1e-6 to 10; "
                          "nothing is saved.")
        self.show()

    def on_event(self, ev) -> None:
        """Status and Prepare events of the range test (and of its data preparation); others are not shown."""
        if getattr(ev, "kind", None) not in ("status", "prepare"):
            return  # the data preparation's DatasetSummary and Warning events carry no message
        total = getattr(ev, "total", 0)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(getattr(ev, "done", 0))
            self.progress.setFormat(f"{ev.message}: %v of %m")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{ev.message}…")

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("Cancelling after this step…")
        self.cancel_requested.emit()

    def cancelled(self) -> None:
        self.note.setText("Cancelled; the learning rate was not changed.")
        self._idle()

    def failed(self, failure) -> None:
        """The range test could not run (a Failure: its message, and what to do)."""
        self.banner.show_message(failure.message, "error")
        self.note.setText("")
        self._idle()

    def show_result(self, found) -> None:
        self.lrs, self.losses = list(found.lrs), list(found.losses)
        self.suggested = float(found.lr)
        self.curve.setData(self.lrs, self.losses)
        y = self._loss_at(self.suggested)
        self.mark.setData([self.suggested], [y])
        self.mark_line.setValue(math.log10(self.suggested))
        self.mark_line.show()
        low = min(self.losses)
        self.plot.setYRange(low, min(max(self.losses), low * 4), padding=0.05)
        self.note.setText(f"Suggested learning rate {format_lr(self.suggested)} ({found.method}; "
                          f"{len(self.lrs)} steps from {format_lr(self.lrs[0])} to {format_lr(self.lrs[-1])}). "
                          "Click the curve to choose another rate.")
        self.use_button.setText(f"Use {format_lr(self.suggested)}")
        self._idle()

    # ---- choosing ---------------------------------------------------------------------------------
    def _loss_at(self, lr: float) -> float:
        return self.losses[self.nearest(lr)] if self.losses else 0.0

    def nearest(self, lr: float) -> int:
        """The index of the rate tried closest to `lr` (on the log scale)."""
        target = math.log10(max(lr, 1e-30))
        return min(range(len(self.lrs)), key=lambda i: abs(math.log10(self.lrs[i]) - target))

    def use_suggestion(self) -> None:
        """The suggested rate itself (the minimum / 10 is not one of the rates tried: no snapping to them)."""
        if self.suggested is not None and self.lrs:
            self._set_chosen(self.suggested)

    def choose(self, lr: float) -> None:
        """The rate tried nearest to `lr` (a click on the curve)."""
        if self.lrs:
            self._set_chosen(self.lrs[self.nearest(lr)])

    def _set_chosen(self, lr: float) -> None:
        self.chosen = lr
        self.chosen_mark.setData([lr], [self._loss_at(lr)])
        self.lr_chosen.emit(lr)

    def _clicked(self, event) -> None:
        if not self.lrs or event.button() != Qt.MouseButton.LeftButton:
            return
        view = self.plot.getPlotItem().vb
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        x = view.mapSceneToView(event.scenePos()).x()  # log10(rate) on the log axis
        self.choose(10 ** x)
        event.accept()

    def scene_point(self, lr: float):
        """Where the curve's point nearest `lr` is drawn, in the plot widget's coordinates (tests, scripts)."""
        i = self.nearest(lr)
        view = self.plot.getPlotItem().vb
        scene = view.mapViewToScene(pg.Point(math.log10(self.lrs[i]), self.losses[i]))
        return self.plot.mapFromScene(scene)
