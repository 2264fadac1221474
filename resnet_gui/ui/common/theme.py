"""Light, dark and system palettes on the Fusion style (the same look on every platform).

Fusion outlines check boxes with a shade of the window colour; on a dark palette that outline vanishes
against the base colour of lists and trees, so unticked boxes there could not be seen. The style used here
is Fusion with a visible outline around check boxes on dark palettes."""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory, QWidget


class ThemeNotifier(QObject):
    """Says that the palette changed, for widgets whose colours come from a style sheet (Qt does not tell them)."""

    changed = Signal()


_notifier: ThemeNotifier | None = None


def notifier() -> ThemeNotifier:
    global _notifier
    if _notifier is None:
        _notifier = ThemeNotifier(QApplication.instance())
    return _notifier


class _PaletteWatcher(QObject):
    """A child of the widget: it goes with the widget, and so does its connection to the theme's notifier (a
    lambda connected there directly would outlive the widget and paint a deleted one)."""

    def __init__(self, widget: QWidget, apply: Callable[[], None]):
        super().__init__(widget)
        # a method of the widget is held weakly: held strongly, widget -> watcher -> method -> widget is a cycle,
        # and a widget without a parent is then freed by the garbage collector at any moment, even while it
        # paints (a segfault in QPainter::restore)
        self._apply = weakref.WeakMethod(apply) if inspect.ismethod(apply) else lambda: apply
        widget.installEventFilter(self)
        notifier().changed.connect(self.apply)

    def apply(self) -> None:
        apply = self._apply()
        if apply is not None:
            apply()

    def eventFilter(self, _watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.PaletteChange:
            self.apply()
        return False


def follow_palette(widget: QWidget, apply: Callable[[], None]) -> None:
    """Call `apply` now, and again whenever the palette changes: the widget's own, or the theme's (colours
    painted by hand or set in plots and style sheets do not follow by themselves). Ends with the widget.
    `apply` is a method of the widget (held weakly), or a function that does not hold the widget."""
    _PaletteWatcher(widget, apply).apply()


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    if dark:
        window, base, alt, text, button = "#2b2d31", "#1e1f22", "#26282c", "#e6e6e6", "#36393f"
        highlight, link, disabled, mid = "#4c8dd9", "#7fb2f0", "#7a7d83", "#4a4d52"
        placeholder = "#a2a6ad"  # secondary text: at least 4.5:1 on the window colour
    else:
        window, base, alt, text, button = "#f3f4f6", "#ffffff", "#f7f8fa", "#1d1f23", "#e9ebef"
        highlight, link, disabled, mid = "#2f6fcb", "#1f5fb8", "#8e939b", "#b8bcc4"
        placeholder = "#62666e"
    roles = QPalette.ColorRole
    for role, color in ((roles.Window, window), (roles.Base, base), (roles.AlternateBase, alt),
                        (roles.WindowText, text), (roles.Text, text), (roles.Button, button),
                        (roles.ButtonText, text), (roles.ToolTipBase, base), (roles.ToolTipText, text),
                        (roles.Highlight, highlight), (roles.HighlightedText, "#ffffff"), (roles.Link, link),
                        (roles.PlaceholderText, placeholder), (roles.Mid, mid), (roles.Midlight, alt),
                        (roles.Dark, mid), (roles.Shadow, "#000000"), (roles.Light, base)):
        p.setColor(role, QColor(color))
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return p


def light_palette() -> QPalette:
    """The light theme's colours, whatever the app shows: exported figures are read on white paper."""
    return _palette(False)


class AppStyle(QProxyStyle):
    """Fusion, with check boxes that keep a visible outline on dark palettes."""

    CHECKS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox, QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck)

    def __init__(self):
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element, option, painter, widget=None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        pal = option.palette
        if element in self.CHECKS and pal.color(QPalette.ColorRole.Base).lightness() < 128:
            painter.save()
            painter.setPen(QPen(pal.color(QPalette.ColorRole.PlaceholderText), 1))
            painter.setBrush(QColor(0, 0, 0, 0))
            painter.drawRoundedRect(option.rect.adjusted(0, 0, -1, -1), 1.5, 1.5)
            painter.restore()


def apply(app: QApplication, name: str = "system") -> None:
    if not isinstance(app.style(), AppStyle):
        app.setStyle(AppStyle())
    if name == "dark":
        app.setPalette(_palette(True))
    elif name == "light":
        app.setPalette(_palette(False))
    else:
        app.setPalette(app.style().standardPalette())
    notifier().changed.emit()
