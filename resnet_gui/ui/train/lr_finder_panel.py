"""The learning-rate finder's panel in the Train tab: while the range test runs, its curve grows point by point
with progress, time left and Cancel; then the smoothed loss against the learning rate (log axis, every tick
written the same way) with the suggestion marked, the current rate drawn as a line, and one sentence saying
what the suggestion means against the current rate. A click on the mark, or anywhere on the curve, chooses that
rate (the nearest rate tried); "Use" takes the suggestion."""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import duration, learning_rate

from ..common.plots import make_plot, paint_plot
from ..common.theme import follow_palette
from ..common.widgets import Banner

CURVE_COLOR = (31, 119, 180)
MARK_COLOR = (214, 39, 40)
CHOSEN_COLOR = (44, 160, 44)
CURRENT_COLOR = (127, 127, 127)
ROOM = 0.4   # the share of a splitter the panel takes when it opens


class RateAxis(pg.AxisItem):
    """The log-scale rate axis with every tick written alike (pyqtgraph mixes "10⁻⁶" and "0.0001")."""

    def logTickStrings(self, values, _scale, _spacing):  # noqa: N802 - pyqtgraph's name
        return [learning_rate(10 ** v) for v in values]


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
        self.plot = make_plot("learning rate (log scale)", "loss (smoothed)", min_height=200,
                              bottom_axis=RateAxis("bottom"))
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
        self.current_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(CURRENT_COLOR, width=1,
                                                                                   style=Qt.PenStyle.DotLine),
                                            label="current", labelOpts={"position": 0.9, "color": CURRENT_COLOR})
        self.current_line.hide()
        self.plot.addItem(self.current_line, ignoreBounds=True)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        layout.addWidget(self.plot, 1)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.suggested: float | None = None
        self.chosen: float | None = None
        self.current: float | None = None   # the form's learning rate when the test started
        follow_palette(self, self.apply_palette)
        self._idle()

    def apply_palette(self) -> None:
        paint_plot(self.plot, self.palette())

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Opened in a splitter (the Train tab's column), it takes ROOM (a share) of it: a splitter gives a child
        that appears only its minimum when the one below asks for more (the monitor does), and the plot's rate
        axis was cut off."""
        super().showEvent(event)
        splitter = self.parentWidget()
        if event.spontaneous() or not isinstance(splitter, QSplitter):
            return
        sizes, here = splitter.sizes(), splitter.indexOf(self)
        total = sum(sizes)
        want = int(total * ROOM)
        if here >= 0 and len(sizes) == 2 and sizes[here] < want:
            sizes[here], sizes[1 - here] = want, total - want
            splitter.setSizes(sizes)

    # ---- states -----------------------------------------------------------------------------------
    def running(self) -> bool:
        """The range test runs (begin() was called and it has not ended)."""
        return not self.cancel_button.isHidden()

    def _idle(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.use_button.setVisible(self.suggested is not None)

    def begin(self, steps: int, current: float | None = None) -> None:
        """The range test starts: progress and Cancel; the previous curve goes; `current` (the form's rate) is
        drawn as a line."""
        self.banner.clear_message()
        self.lrs, self.losses, self.suggested, self.chosen = [], [], None, None
        for item in (self.curve, self.mark, self.chosen_mark):
            item.setData([], [])
        self.mark_line.hide()
        self.current = current if current and current > 0 else None
        self.current_line.setVisible(self.current is not None)
        if self.current is not None:
            self.current_line.setValue(math.log10(self.current))
            self.current_line.label.setFormat(f"current {learning_rate(self.current)}")
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
        """The range test's points as they come (LrStep), and the Status and Prepare events of its data
        preparation; others are not shown."""
        kind = getattr(ev, "kind", None)
        if kind == "lr_step":
            self._step(ev)
            return
        if kind not in ("status", "prepare"):
            return  # the data preparation's DatasetSummary and Warning events carry no message
        total = getattr(ev, "total", 0)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(getattr(ev, "done", 0))
            self.progress.setFormat(f"{ev.message}: %v of %m")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{ev.message}…")

    def _step(self, ev) -> None:
        self.lrs.extend(ev.lrs)
        self.losses.extend(ev.losses)
        self._draw_curve()
        self.progress.setRange(0, ev.steps)
        self.progress.setValue(ev.step)
        left = "" if ev.eta_s is None else f" · about {duration(ev.eta_s)} left"
        self.progress.setFormat(f"Step {ev.step} of at most {ev.steps}{left}")

    def _draw_curve(self) -> None:
        self.curve.setData(self.lrs, self.losses)
        if self.losses:  # the divergence at the end would flatten the rest of the curve
            low = min(self.losses)
            self.plot.setYRange(low, min(max(self.losses), low * 4), padding=0.05)

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
        self.suggested = None if found.lr is None else float(found.lr)
        self._draw_curve()
        tried = f"{len(self.lrs)} steps from {learning_rate(self.lrs[0])} to {learning_rate(self.lrs[-1])}"
        if self.suggested is None:  # no clear descent: no mark, nothing to use; the curve can still be clicked
            for item in (self.mark, self.chosen_mark):
                item.setData([], [])
            self.mark_line.hide()
            self.note.setText(f"No learning rate suggested: {found.method} ({tried}), so any rate would be a "
                              "guess. The images may hold nothing this model can learn (check the folders and their "
                              "labels), or the curve is too noisy (try a larger batch size). The learning rate was "
                              "not changed.")
            self._idle()
            return
        y = self._loss_at(self.suggested)
        self.mark.setData([self.suggested], [y])
        self.mark_line.setValue(math.log10(self.suggested))
        self.mark_line.show()
        self.note.setText(f"{found.explained(self.current)} ({found.method}; {tried}.) Click the curve to choose "
                          "another rate.")
        self.use_button.setText(f"Use {learning_rate(self.suggested)}")
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
