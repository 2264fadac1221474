"""A place in a layout for a widget that is made only when it is first needed: shown (its tab opened) or asked
for (widget()). Until then its module is not even imported, so that the plots' pyqtgraph (half a second) stays
off the start-up path: the window shows, and classifies, without it.

    page = LazyPage(lambda: ReliabilityPlot())     # stands in the layout or tab bar where the plot goes
    page.widget().set_bins(...)                    # made now if it was not yet (then `made` is emitted)
    if (plot := page.made_widget()) is not None:   # only if it exists: clearing a plot never made is moot
        plot.clear()

preload_task (in a worker) imports the modules of the pages not yet made once classifying is ready, so that
opening one of them later only builds its widgets.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyPage(QWidget):
    made = Signal(QWidget)   # the widget, just made and placed

    def __init__(self, factory: Callable[[], QWidget], parent=None):
        super().__init__(parent)
        self._factory = factory
        self._widget: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def widget(self) -> QWidget:
        """The widget, made (and its module imported) on the first call."""
        if self._widget is None:
            self._widget = self._factory()
            self.layout().addWidget(self._widget)
            self.made.emit(self._widget)
        return self._widget

    def made_widget(self) -> QWidget | None:
        """The widget if it has been made, else None (nothing is made)."""
        return self._widget

    def showEvent(self, event) -> None:
        self.widget()
        super().showEvent(event)


def preload_task(report, stop, modules: tuple[str, ...]) -> list[str]:
    """Import `modules` (a worker's function): the ones a LazyPage will need, ahead of its first showing. Imports
    hold the interpreter lock only in short turns, so the window stays responsive meanwhile."""
    done = []
    for name in modules:
        if stop.is_set():
            break
        importlib.import_module(name)
        done.append(name)
    return done
