"""Small reusable widgets: image preview, top-k bars, banner messages, image conversion."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QWidget


def pil_to_qimage(image, max_side: int | None = None) -> QImage:
    """An RGB PIL image -> QImage (a deep copy, safe to pass between threads)."""
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    image = image.convert("RGB")
    data = image.tobytes("raw", "RGB")
    qimg = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    return qimg.copy()


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
    """Horizontal bars: one row per (label, probability), largest first."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setAccessibleName("Top classes")

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


class Banner(QLabel):
    """An inline message: error (red), warning or info; hidden when empty."""

    STYLES = {
        "error": "background:#fde7e9; color:#8a1020; border:1px solid #f1aeb5;",
        "warning": "background:#fff4d6; color:#6b4b00; border:1px solid #f0d48a;",
        "info": "background:#e4f0fb; color:#0b3d66; border:1px solid #a9cbea;",
        "success": "background:#e3f5e6; color:#14532d; border:1px solid #9fd6aa;",
    }
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setOpenExternalLinks(False)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        self.setStyleSheet(f"QLabel {{ {self.STYLES.get(kind, '')} border-radius:4px; padding:8px; }}")
        self.setProperty("kind", kind)
        self.setText(text)
        self.show()

    def kind(self) -> str:
        return str(self.property("kind") or "")

    def clear_message(self) -> None:
        self.setText("")
        self.hide()


def big_font(widget: QWidget, scale: float = 2.0, bold: bool = True) -> QFont:
    f = QFont(widget.font())
    size = f.pointSizeF() if f.pointSizeF() > 0 else 10.0
    f.setPointSizeF(size * scale)
    f.setBold(bold)
    return f
