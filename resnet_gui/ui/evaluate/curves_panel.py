"""What a threshold costs for one class: its precision–recall curve (the app's sure rule) and one-vs-rest ROC curve,
with the threshold in use marked on both, its precision and recall in words, and a class's own threshold to set:
typed, or found for "precision ≥ X", then saved in the model (Details, the model card and predict use it)."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from resnet_gui.text import plural

from ..common import theme
from ..common.plots import plot_page

CURVE_COLOR = (47, 111, 203)
MARK_COLOR = (214, 55, 40)
EMPTY_TEXT = "Each class's precision–recall and ROC curves appear here after an evaluation."


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _measured(curve, t: float, precision: float | None, recall: float | None, answered: int) -> str:
    """What the threshold gives, in words; when no answer reaches it, why precision is missing and what to do."""
    if answered:
        return (f"{plural(answered, 'answer')} sure, precision {_pct(precision)} (how often they are right), recall "
                f"{_pct(recall)} (of its {curve.support:,} images).")
    if len(curve.answered):
        top = float(curve.answered[0])
        return (f"no answer “{curve.name}” reaches {t:.1%} (the surest is {top:.1%}), so there is no precision to "
                f"measure: lower the threshold to {top:.1%} or less to see how often its sure answers are right.")
    return (f"the model never answers “{curve.name}” on this data, so there is no precision-recall curve and no "
            "precision to measure: its images are all called something else (see its row in the confusion matrix).")


def _plot(x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.12)
    plot.setXRange(0, 1, padding=0.03)
    plot.setYRange(0, 1.02, padding=0.03)
    for axis in ("left", "bottom"):
        plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
    plot.setMinimumHeight(160)
    return plot


class CurvesPanel(QWidget):
    # (class name, record for its own threshold, or None to remove it): save it in the model
    save_requested = Signal(str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.stack, self.empty_label, column = plot_page(self, EMPTY_TEXT)
        top = QHBoxLayout()
        top.addWidget(QLabel("Class:"))
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)   # type to find one of hundreds of classes
        self.class_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.class_combo.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        self.class_combo.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.class_combo.currentIndexChanged.connect(self._class_chosen)
        top.addWidget(self.class_combo, 1)
        column.addLayout(top)
        plots = QHBoxLayout()
        self.pr_plot = _plot("recall", "precision")
        self.roc_plot = _plot("false-positive rate", "true-positive rate")
        plots.addWidget(self.pr_plot)
        plots.addWidget(self.roc_plot)
        column.addLayout(plots, 1)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        column.addWidget(self.caption)
        own = QHBoxLayout()
        own.addWidget(QLabel("Sure from:"))
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 100.0)
        self.threshold_spin.setDecimals(1)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setToolTip("This class's own threshold: its answers below it are “not sure” (the "
                                       "reader's “not sure below” still applies when it is higher)")
        self.threshold_spin.valueChanged.connect(self._threshold_moved)
        own.addWidget(self.threshold_spin)
        own.addSpacing(12)
        own.addWidget(QLabel("or precision ≥"))
        self.precision_spin = QDoubleSpinBox()
        self.precision_spin.setRange(1.0, 100.0)
        self.precision_spin.setDecimals(1)
        self.precision_spin.setValue(95.0)
        self.precision_spin.setSuffix(" %")
        self.precision_spin.setToolTip("Find the lowest threshold whose sure answers of this class are right at "
                                       "least this often on the evaluated images")
        own.addWidget(self.precision_spin)
        self.find_button = QPushButton("Find")
        self.find_button.clicked.connect(self.find_for_precision)
        own.addWidget(self.find_button)
        own.addStretch(1)
        self.save_button = QPushButton("Save in the model")
        self.save_button.setToolTip("Store this class's threshold in the model: Predict, predict on the command "
                                    "line, sorting, Details and the model card use it")
        self.save_button.clicked.connect(self._save)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Forget this class's own threshold: the reader's “not sure below” alone")
        self.remove_button.clicked.connect(lambda: self.save_requested.emit(self.current_class(), None))
        own.addWidget(self.save_button)
        own.addWidget(self.remove_button)
        column.addLayout(own)
        self.curves: list = []
        self.operating_points: dict = {}
        self.reader_threshold = 0.6
        self.data_words = ""
        self._goal: float | None = None   # the precision the threshold was found for (until moved by hand)
        self._dots: dict | None = None   # the plot items (_make_items), made at the first drawing
        theme.notifier().changed.connect(self.apply_palette)
        self.apply_palette()

    # ---- data ---------------------------------------------------------------------------------------
    def set_curves(self, curves: list, operating_points: dict, reader_threshold: float, data_words: str) -> None:
        """curves: core.evaluation.curves.ClassCurve per class; operating_points: the model's stored ones."""
        keep = self.current_class()
        self.curves, self.operating_points = list(curves), dict(operating_points or {})
        self.reader_threshold, self.data_words = reader_threshold, data_words
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for i, curve in enumerate(self.curves):
            mark = " ★" if curve.name in self.operating_points else ""
            self.class_combo.addItem(curve.name + mark, i)
        names = [c.name for c in self.curves]
        self.class_combo.setCurrentIndex(names.index(keep) if keep in names else 0)
        self.class_combo.blockSignals(False)
        self.stack.setCurrentIndex(1 if self.curves else 0)
        self._class_chosen()

    def set_operating_points(self, operating_points: dict) -> None:
        """The model's thresholds after a save: the marks and the ★ follow."""
        self.set_curves(self.curves, operating_points, self.reader_threshold, self.data_words)

    def clear(self) -> None:
        self.curves = []
        self.stack.setCurrentIndex(0)

    def current_curve(self):
        i = self.class_combo.currentData()
        return self.curves[i] if isinstance(i, int) and 0 <= i < len(self.curves) else None

    def current_class(self) -> str | None:
        curve = self.current_curve()
        return curve.name if curve is not None else None

    def threshold(self) -> float:
        return self.threshold_spin.value() / 100

    def effective_threshold(self) -> float:
        """What an answer of the class must reach with the threshold shown: the reader's, or this one if higher."""
        return max(self.reader_threshold, self.threshold())

    # ---- interaction --------------------------------------------------------------------------------
    def _class_chosen(self, *_) -> None:
        curve = self.current_curve()
        if curve is None:
            return
        own = self.operating_points.get(curve.name) or {}
        self._goal = own.get("precision_at_least")
        self.threshold_spin.blockSignals(True)
        self.threshold_spin.setValue(100 * own.get("threshold", self.reader_threshold))
        self.threshold_spin.blockSignals(False)
        self.remove_button.setEnabled(bool(own))
        self._draw()

    def _threshold_moved(self, *_) -> None:
        self._goal = None
        self._draw()

    def find_for_precision(self) -> float | None:
        curve = self.current_curve()
        if curve is None:
            return None
        wanted = self.precision_spin.value() / 100
        found = curve.threshold_for_precision(wanted)
        if found is None:
            self.caption.setText(f"No threshold gives “{curve.name}” a precision of {wanted:.1%} on these images: "
                                 "even its most confident answers are wrong too often. Try a lower precision.")
            return None
        self.threshold_spin.blockSignals(True)
        self.threshold_spin.setValue(100 * found)
        self.threshold_spin.blockSignals(False)
        if round(self.threshold_spin.value() / 100, 4) < found:  # the spin box rounds to 0.1 %: never below it
            self.threshold_spin.blockSignals(True)
            self.threshold_spin.setValue(self.threshold_spin.value() + 0.1)
            self.threshold_spin.blockSignals(False)
        self._goal = wanted
        self._draw()
        return self.threshold()

    def record(self) -> dict:
        """What Save stores for the class shown: the threshold, the goal, and what it measured here."""
        import datetime as dt

        curve = self.current_curve()
        t = self.threshold()
        precision, recall, _ = curve.at(t)
        out = {"threshold": round(t, 4), "measured_on": f"{self.data_words} ({curve.support:,} images of the class)",
               "set": dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")}
        if precision is not None:
            out["precision"] = round(precision, 4)
        if recall is not None:
            out["recall"] = round(recall, 4)
        if self._goal is not None:
            out["precision_at_least"] = self._goal
        return out

    def _save(self) -> None:
        if self.current_curve() is not None:
            self.save_requested.emit(self.current_class(), self.record())

    # ---- drawing ------------------------------------------------------------------------------------
    def apply_palette(self) -> None:
        pal = self.palette()
        fg = pal.color(QPalette.ColorRole.Text)
        for plot in (self.pr_plot, self.roc_plot):
            plot.setBackground(pal.color(QPalette.ColorRole.Base))
            for axis in ("left", "bottom"):
                ax = plot.getPlotItem().getAxis(axis)
                ax.setPen(fg)
                ax.setTextPen(fg)
        if self.curves:
            self._draw()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.apply_palette()

    def marks(self) -> dict:
        """Where the threshold sits on each plot: {"pr": (recall, precision), "roc": (fpr, tpr)} (None: no point)."""
        return dict(self._marks)

    def _make_items(self) -> None:
        """The plot items, made once: a class change or a threshold move only sets their data (making pyqtgraph
        items costs tens of milliseconds each; setting data, well under one)."""
        line = pg.mkPen(*CURVE_COLOR, width=2)
        self._pr_line = self.pr_plot.plot([], [], pen=line)
        self._diagonal = self.roc_plot.plot([0, 1], [0, 1])
        self._roc_line = self.roc_plot.plot([], [], pen=line)
        self._dots, self._labels = {}, {}
        for key, plot in (("pr", self.pr_plot), ("roc", self.roc_plot)):
            self._dots[key] = pg.ScatterPlotItem(size=11, symbol="o", brush=pg.mkBrush(*MARK_COLOR))
            self._labels[key] = pg.TextItem("", anchor=(-0.2, 1.2))
            plot.addItem(self._dots[key])
            plot.addItem(self._labels[key])

    def _draw(self) -> None:
        if self._dots is None:
            self._make_items()
        self._marks = {"pr": None, "roc": None}
        curve = self.current_curve()
        if curve is None:
            return
        t = self.effective_threshold()
        fg = self.palette().color(QPalette.ColorRole.Text)
        pr = curve.pr_points()
        self._pr_line.setData(pr["recall"], pr["precision"])
        self._diagonal.setPen(pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))
        self._roc_line.setData(curve.roc_fpr, curve.roc_tpr)
        precision, recall, answered = curve.at(t)
        if precision is not None and recall is not None:
            self._marks["pr"] = (recall, precision)
        self._marks["roc"] = curve.roc_at(t)
        for key, point in self._marks.items():
            dot, label = self._dots[key], self._labels[key]
            dot.setData([point[0]] if point else [], [point[1]] if point else [], pen=pg.mkPen(fg, width=1.5))
            label.setText(f"{t:.0%}" if point else "", color=fg)
            if point:
                label.setPos(*point)
        stored = self.operating_points.get(curve.name)
        is_stored = stored is not None and abs(stored["threshold"] - t) < 5e-4
        if is_stored:
            whose, saved = "its own threshold, saved in the model", ""
        elif t > self.reader_threshold:  # chosen here, not (or not yet) the model's
            whose = "the threshold chosen here"
            saved = (f" Not saved: the model keeps its own, sure from {stored['threshold']:.1%}." if stored else
                     " Not saved yet: Save in the model makes it this class's own threshold.")
        else:
            whose = "the “not sure below” threshold"
            saved = (f" Saved in the model: sure from {stored['threshold']:.1%}." if stored else
                     " The model has no threshold of its own for this class.")
        goal = f" (found for precision ≥ {self._goal:.1%})" if self._goal is not None else ""
        areas = [f"{what} {value:.3f}" for what, value in (("Average precision", curve.average_precision),
                                                             ("ROC area", curve.roc_auc)) if value is not None]
        areas_text = ("; ".join(areas) + ". ") if areas else ""
        self.caption.setText(f"“{curve.name}” is sure from {t:.1%} ({whose}){goal}: "
                             f"{_measured(curve, t, precision, recall, answered)} {areas_text}{saved.strip()} "
                             "The marked point is that threshold; the curves show every other one.")
