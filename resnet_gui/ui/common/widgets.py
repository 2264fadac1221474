"""Small reusable widgets: image preview, top-k bars, banners with fix buttons, toggle buttons, elided labels,
a following log view, an empty-state page, progress on a bar, plain-text tooltips."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import theme


class ImagePreview(QLabel):
    """Shows an image scaled to fit, keeping its aspect ratio; a hint text when empty."""

    def __init__(self, hint: str = "", parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._hint = hint
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setWordWrap(True)
        self.setText(hint)
        self.setObjectName("imagePreview")

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        self._rescale()

    def image(self) -> QImage | None:
        return self._image

    def clear_image(self, hint: str | None = None) -> None:
        self._image = None
        self.setPixmap(QPixmap())
        self.setText(hint if hint is not None else self._hint)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None:
            self.setPixmap(QPixmap())
            self.setText(self._hint)
            return
        ratio = self.devicePixelRatioF()
        target = self.contentsRect().size() * ratio
        target = QSize(max(1, target.width() - 8), max(1, target.height() - 8))
        src = self._image
        # small images (32 x 32 samples) are enlarged with crisp pixels, large ones smoothly reduced
        mode = Qt.TransformationMode.FastTransformation if max(src.width(), src.height()) < 128 \
            else Qt.TransformationMode.SmoothTransformation
        pix = QPixmap.fromImage(src.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, mode))
        pix.setDevicePixelRatio(ratio)
        self.setPixmap(pix)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(420, 360)


class TopKBars(QWidget):
    """Horizontal bars: one row per (label, probability), largest first. Clicking a row names its position (labels
    may repeat)."""

    row_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setAccessibleName("Top classes")

    def mousePressEvent(self, event) -> None:
        row = int(event.position().y() // self._row_height())
        if 0 <= row < len(self._rows) and event.button() == Qt.MouseButton.LeftButton:
            self.row_clicked.emit(row)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self._rows = list(rows)
        self.updateGeometry()
        self.update()
        self.setToolTip("\n".join(f"{label}: {p:.2%}" for label, p in rows))

    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 12

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(300, max(1, len(self._rows)) * self._row_height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, len(self._rows) * self._row_height())

    def paintEvent(self, event) -> None:  # noqa: N802
        if not self._rows:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = self.fontMetrics()
        rh = self._row_height()
        label_w = min(max(fm.horizontalAdvance(label) for label, _ in self._rows) + 12, self.width() // 2)
        pct_w = fm.horizontalAdvance("100.0 %") + 8
        bar_w = max(10, self.width() - label_w - pct_w)
        accent = pal.color(QPalette.ColorRole.Highlight)
        track = pal.color(QPalette.ColorRole.Mid)
        track.setAlpha(60)
        for i, (label, prob) in enumerate(self._rows):
            y = i * rh
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            elided = fm.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 8)
            p.drawText(QRectF(0, y, label_w - 8, rh), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       elided)
            bar = QRectF(label_w, y + 4, bar_w, rh - 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(bar, 3, 3)
            fill = QColor(accent)
            if i:
                fill.setAlpha(150)
            p.setBrush(fill)
            p.drawRoundedRect(QRectF(bar.x(), bar.y(), max(2.0, bar_w * prob), bar.height()), 3, 3)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(label_w + bar_w + 6, y, pct_w, rh), Qt.AlignmentFlag.AlignVCenter,
                       f"{prob * 100:.1f} %")
        p.end()


class Banner(QFrame):
    """An inline message (error, warning, info, success), with buttons for the fix where there is one;
    hidden when empty. Its colours follow the light or dark palette, also when the theme changes."""

    LIGHT = {
        "error": ("#fde7e9", "#8a1020", "#f1aeb5"),
        "warning": ("#fff4d6", "#6b4b00", "#f0d48a"),
        "info": ("#e4f0fb", "#0b3d66", "#a9cbea"),
        "success": ("#e3f5e6", "#14532d", "#9fd6aa"),
    }
    DARK = {
        "error": ("#4a1f24", "#ffd7dc", "#7a2f38"),
        "warning": ("#473a14", "#ffe8a8", "#7a6220"),
        "info": ("#1d3550", "#d3e7fb", "#35577c"),
        "success": ("#1e3d28", "#c9f0d3", "#356b45"),
    }

    MAX_LINES = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        # a long message (an end-of-run verdict) scrolls inside the banner instead of being cut off when the
        # window is small: the banner is as tall as its text up to MAX_LINES lines
        self.scroll = QScrollArea()
        self.scroll.setObjectName("bannerScroll")
        self.scroll.setWidget(self.label)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.viewport().setAutoFillBackground(False)
        self.label.setAutoFillBackground(False)
        self.scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.scroll, 1)
        self._buttons = QHBoxLayout()
        layout.addLayout(self._buttons)
        self._kind = ""
        theme.notifier().changed.connect(self._restyle)
        self.hide()

    def show_message(self, text: str, kind: str = "error",
                     actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """Show `text`; each (button text, callback) in `actions` becomes a button next to it."""
        self._kind = kind
        self.label.setText(text)
        self._remove_buttons()
        for label, callback in actions:
            button = QPushButton(label)
            # clicked(checked) would fill a callback's first default argument (lambda n=name: …) with False
            button.clicked.connect(lambda _checked=False, callback=callback: callback())
            self._buttons.addWidget(button)
        self._restyle()
        self.show()
        self._fit()

    def text(self) -> str:
        return self.label.text()

    def kind(self) -> str:
        return self._kind

    def set_text(self, text: str) -> None:
        """Other words for the message shown (its kind and buttons stay)."""
        self.label.setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        """The text's height at the banner's width, up to MAX_LINES lines (the rest scrolls)."""
        width = self.scroll.viewport().width()
        if width <= 0:
            return
        margins = self.label.contentsMargins()
        wanted = self.label.heightForWidth(width) + margins.top() + margins.bottom()
        cap = self.MAX_LINES * self.label.fontMetrics().lineSpacing() + 4
        height = max(self.label.fontMetrics().lineSpacing(), min(wanted, cap))
        if wanted > cap:  # the scroll bar takes width from the text: measure again beside it
            bar = self.scroll.verticalScrollBar().sizeHint().width()
            height = min(self.label.heightForWidth(max(1, width - bar)), cap)
        if self.scroll.height() != height:
            self.scroll.setFixedHeight(height)

    def buttons(self) -> list[QPushButton]:
        return [self._buttons.itemAt(i).widget() for i in range(self._buttons.count())]

    def clear_message(self) -> None:
        self.label.setText("")
        self._kind = ""
        self._remove_buttons()
        self.hide()

    def _remove_buttons(self) -> None:
        while self._buttons.count():
            item = self._buttons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def _restyle(self) -> None:
        colors = (DARK_BANNER if is_dark() else LIGHT_BANNER).get(self._kind)
        if colors is None:
            return
        background, text, border = colors
        css = (f"QFrame#banner {{ background:{background}; border:1px solid {border}; border-radius:4px; }}"
               f"QFrame#banner QLabel {{ color:{text}; background:transparent; border:none; }}"
               "QFrame#banner QScrollArea#bannerScroll, QFrame#banner QScrollArea#bannerScroll > QWidget "
               "{ background:transparent; border:none; }")
        if css != self.styleSheet():
            self.setStyleSheet(css)


LIGHT_BANNER, DARK_BANNER = Banner.LIGHT, Banner.DARK


def is_dark() -> bool:
    """Whether the application's palette is a dark one."""
    return QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


class ToggleButton(QToolButton):
    """A checkable button whose checked state stands out in every palette (and after a theme change)."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.setText(text)
        self.setCheckable(True)
        self._restyle()
        theme.notifier().changed.connect(self._restyle)

    def _restyle(self) -> None:
        pal = QApplication.palette()
        role = QPalette.ColorRole
        mid, button, text = (pal.color(r).name() for r in (role.Mid, role.Button, role.ButtonText))
        highlight, highlighted_text = pal.color(role.Highlight).name(), pal.color(role.HighlightedText).name()
        greyed = pal.color(QPalette.ColorGroup.Disabled, role.ButtonText).name()
        # a style sheet's colours apply in every state: without the :disabled rule a disabled button looked
        # exactly like an enabled one ("Show why" before any image was shown)
        css = (f"QToolButton {{ padding: 3px 10px; border: 1px solid {mid}; border-radius: 3px; background: {button};"
               f" color: {text}; }}"
               f"QToolButton:checked {{ background: {highlight}; color: {highlighted_text};"
               f" border-color: {highlight}; }}"
               f"QToolButton:disabled {{ background: {pal.color(role.Window).name()}; color: {greyed};"
               f" border-style: dashed; }}")
        if css != self.styleSheet():
            self.setStyleSheet(css)


class ElidedLabel(QLabel):
    """One line of plain text, elided to the space it has; the whole text is the tooltip when cut."""

    def __init__(self, text: str = "", parent=None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self._elide()
        self.updateGeometry()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(1, self.contentsRect().width()))
        super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right() + 2
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("M…"), super().minimumSizeHint().height())


class LogView(QPlainTextEdit):
    """A read-only log that follows new lines unless the user has scrolled up to read earlier ones."""

    def __init__(self, placeholder: str = "", max_lines: int = 5000, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        self.setPlaceholderText(placeholder)
        self._following, self._scrolling = True, False
        bar = self.verticalScrollBar()
        # wrapped lines are laid out later (a resize, a hidden tab shown): the range may grow after append_line
        bar.rangeChanged.connect(lambda _low, _high: self._following and self._to_bottom())
        bar.valueChanged.connect(self._scrolled)

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 1

    def _scrolled(self, _value: int) -> None:
        if not self._scrolling:  # the user moved it: follow again once back at the bottom
            self._following = self.at_bottom()

    def _to_bottom(self) -> None:
        self._scrolling = True
        try:
            self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
        finally:
            self._scrolling = False

    def follow(self) -> None:
        """Show the newest line and keep following (a new run's lines must not open on an old run's)."""
        self._following = True
        self._to_bottom()

    def append_line(self, text: str) -> None:
        self.appendPlainText(text)
        if self._following:
            self._to_bottom()


def empty_state_stack(owner: QWidget, text: str) -> tuple[QStackedWidget, QLabel]:
    """Fill `owner` with a stack whose first page is a centred, placeholder-coloured sentence (what appears here
    and when); the caller adds the content page and switches to it."""
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    stack = QStackedWidget()
    outer.addWidget(stack)
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    stack.addWidget(label)
    return stack, label


def show_progress(bar, what: str, done: int, total: int) -> None:
    """A worker's (what, done, total) on a QProgressBar: "Reading images: 1,200 of 5,000" (left busy while the
    total is unknown)."""
    if total:
        bar.setRange(0, total)
        bar.setValue(done)
        bar.setFormat(f"{what}: {done:,} of {total:,}")


def plain_label(font=None, wrap: bool = True) -> QLabel:
    """An empty label for data or sentences shown literally (plain text, never rich text), wrapped by default."""
    label = QLabel("")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    if font is not None:
        label.setFont(font)
    return label


def plain_tip(text: str) -> str:
    """A tooltip that shows `text` (file or class names: data) literally: Qt renders a tooltip that looks like
    HTML as rich text, so such text is escaped inside <qt> (no tags, no images loaded)."""
    import html

    return f"<qt>{html.escape(text)}</qt>" if text and ("<" in text or "&" in text) else text


def big_font(widget: QWidget, scale: float = 2.0, bold: bool = True) -> QFont:
    f = QFont(widget.font())
    size = f.pointSizeF() if f.pointSizeF() > 0 else 10.0
    f.setPointSizeF(size * scale)
    f.setBold(bold)
    return f
