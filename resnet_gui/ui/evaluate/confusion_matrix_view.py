"""A confusion-matrix heatmap: rows are the true classes, columns the predicted ones. Each cell shows its
count; its colour is the share of that row (so small classes are as readable as large ones): the accent
colour on the diagonal (right), red off it (mistakes). Clicking a cell asks for the images behind it; it
can also be drawn into an image of any size for export (PNG)."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MISTAKE_COLOR = QColor(214, 55, 40)
MAX_CELL = 72
MIN_TEXT_CELL = 18          # smaller cells show their count in the tooltip only
LABEL_GAP = 6


class ConfusionMatrixView(QWidget):
    cell_clicked = Signal(int, int)      # (true class index, predicted class index)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_names: list[str] = []
        self.matrix: list[list[int]] = []
        self.selected: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(260, 260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Confusion matrix")
        self.setToolTip("")

    # ---- data -------------------------------------------------------------------------------------
    def set_matrix(self, class_names: list[str], matrix: list[list[int]]) -> None:
        self.class_names = list(class_names)
        self.matrix = [list(map(int, row)) for row in matrix]
        self.selected = None
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_matrix([], [])

    def count(self, true: int, predicted: int) -> int:
        return self.matrix[true][predicted]

    def select(self, cell: tuple[int, int] | None) -> None:
        self.selected = cell
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(520, 520)

    # ---- geometry ---------------------------------------------------------------------------------
    def _layout(self, rect: QRect, font: QFont) -> tuple[float, float, float, bool]:
        """(left, top, cell size, rotate column labels) for drawing into `rect`."""
        from PySide6.QtGui import QFontMetrics

        fm = QFontMetrics(font)
        n = max(1, len(self.class_names))
        label_w = max((fm.horizontalAdvance(name) for name in self.class_names), default=0)
        label_w = min(label_w, max(60, rect.width() // 4)) + LABEL_GAP
        title_h = fm.height() + LABEL_GAP
        left = rect.left() + title_h + label_w
        avail_w = rect.right() - left - 4
        cell = min(MAX_CELL, max(4.0, avail_w / n))
        rotate = label_w - LABEL_GAP > cell - 4
        top = rect.top() + title_h + (label_w if rotate else fm.height() + LABEL_GAP)
        cell = min(cell, max(4.0, (rect.bottom() - top - 4) / n))
        return left, top, cell, rotate

    def cell_rect(self, true: int, predicted: int) -> QRectF:
        left, top, cell, _ = self._layout(self.contentsRect(), self.font())
        return QRectF(left + predicted * cell, top + true * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        if not self.matrix:
            return None
        left, top, cell, _ = self._layout(self.contentsRect(), self.font())
        col, row = int((pos.x() - left) // cell), int((pos.y() - top) // cell)
        n = len(self.class_names)
        return (row, col) if pos.x() >= left and pos.y() >= top and 0 <= row < n and 0 <= col < n else None

    def describe(self, true: int, predicted: int) -> str:
        count = self.matrix[true][predicted]
        total = sum(self.matrix[true])
        share = f" ({count / total:.1%} of the {total:,} images of {self.class_names[true]})" if total else ""
        what = "correct" if true == predicted else f"called {self.class_names[predicted]}"
        return f"{self.class_names[true]}, {what}: {count:,} image{'s' if count != 1 else ''}{share}"

    # ---- events -----------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select(cell)
            self.cell_clicked.emit(*cell)

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            cell = self.cell_at(event.pos())
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.describe(*cell) + "\nClick to see these images.", self)
            return True
        return super().event(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        self.paint(painter, self.contentsRect(), self.palette(), self.font())
        painter.end()

    # ---- drawing ----------------------------------------------------------------------------------
    def paint(self, p: QPainter, rect: QRect, pal: QPalette, font: QFont) -> None:
        text = pal.color(QPalette.ColorRole.WindowText)
        if not self.matrix:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "The confusion matrix appears here after an evaluation.")
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setFont(font)
        fm = p.fontMetrics()
        left, top, cell, rotate = self._layout(rect, font)
        n = len(self.class_names)
        accent = pal.color(QPalette.ColorRole.Highlight)
        grid = pal.color(QPalette.ColorRole.Mid)
        title_h = fm.height() + LABEL_GAP
        p.setPen(text)
        bold = QFont(font)
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(left, rect.top(), cell * n, fm.height()), Qt.AlignmentFlag.AlignCenter, "Predicted class")
        p.save()
        p.translate(rect.left(), top + cell * n / 2)
        p.rotate(-90)
        p.drawText(QRectF(-cell * n / 2, 0, cell * n, fm.height()), Qt.AlignmentFlag.AlignCenter, "True class")
        p.restore()
        p.setFont(font)
        label_w = left - rect.left() - title_h
        for i, name in enumerate(self.class_names):
            y = top + i * cell
            shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, int(label_w - LABEL_GAP))
            p.drawText(QRectF(rect.left() + title_h, y, label_w - LABEL_GAP, cell),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, shown)
            x = left + i * cell
            if rotate:
                p.save()
                p.translate(x + cell / 2 + fm.ascent() / 2 - fm.descent(), top - LABEL_GAP)
                p.rotate(-90)
                p.drawText(0, 0, fm.elidedText(name, Qt.TextElideMode.ElideRight, int(label_w - LABEL_GAP)))
                p.restore()
            else:
                p.drawText(QRectF(x, top - fm.height() - LABEL_GAP / 2, cell, fm.height()),
                           Qt.AlignmentFlag.AlignCenter, name)
        for t, row in enumerate(self.matrix):
            total = sum(row) or 1
            for c, count in enumerate(row):
                r = QRectF(left + c * cell, top + t * cell, cell, cell)
                share = count / total
                alpha = int(45 + 210 * share) if t == c else int(110 + 145 * share)  # mistakes always show
                if count:
                    color = QColor(accent if t == c else MISTAKE_COLOR)
                    color.setAlpha(alpha)
                    p.fillRect(r, color)
                p.setPen(QPen(grid, 1))
                p.drawRect(r)
                if cell >= MIN_TEXT_CELL and (count or cell >= 28):
                    strong = count and alpha > 150
                    p.setPen(QColor("#ffffff") if strong else text)
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, f"{count:,}" if cell >= 40 or count < 1000
                               else f"{count / 1000:.0f}k")
        if self.selected is not None:
            t, c = self.selected
            p.setPen(QPen(text, 3))
            p.drawRect(QRectF(left + c * cell, top + t * cell, cell, cell).adjusted(1, 1, -1, -1))

    def to_image(self, width: int = 1200, palette: QPalette | None = None) -> QImage:
        """The matrix drawn into a square image of `width` pixels (for a PNG), on the palette's base colour."""
        pal = palette or self.palette()
        image = QImage(width, width, QImage.Format.Format_ARGB32)
        image.fill(pal.color(QPalette.ColorRole.Base))
        font = QFont(self.font())
        size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
        font.setPointSizeF(max(size, width / 90))
        painter = QPainter(image)
        self.paint(painter, QRect(16, 16, width - 32, width - 32), pal, font)
        painter.end()
        return image
