"""A confusion-matrix heatmap: rows are the true classes, columns the predicted ones. A cell's colour is its share
of the row (so small classes read as well as large ones): the accent colour on the diagonal (right), red off it
(mistakes). Up to TEXT_LIMIT classes every cell shows its count; above, the matrix is one heat map image (drawn in
milliseconds at 1,000 classes) whose labels appear once zoomed in far enough, and hovering names the cell. The
classes can be shown in their own order or with the most-missed first. Clicking a cell asks for its images;
`export_image` draws a framed figure (title, axis names, no selection mark) for a PNG."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MISTAKE_COLOR = QColor(214, 55, 40)
MAX_CELL = 72
MIN_TEXT_CELL = 18          # smaller cells show their count in the tooltip only
LABEL_GAP = 6
TEXT_LIMIT = 30             # above this many classes: a heat map without per-cell text
MAX_LABEL_W = 220           # class labels are elided beyond this (pixels, at the widget's font)
ORDERS = ("class", "errors")


class ConfusionMatrixView(QWidget):
    cell_clicked = Signal(int, int)      # (true class index, predicted class index)
    zoom_requested = Signal(int, QPoint)  # Ctrl+wheel: +1 / -1 steps, at this point of the view

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_names: list[str] = []
        self.matrix: list[list[int]] = []
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self.order: list[int] = []       # display position -> class index
        self.order_kind = "class"
        self.selected: tuple[int, int] | None = None
        self._heat: QImage | None = None  # the heat map image (many classes), rebuilt when data or palette change
        self._heat_key = None
        self.setMouseTracking(True)
        self.setMinimumSize(260, 260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Confusion matrix")
        self.setToolTip("")

    # ---- data -------------------------------------------------------------------------------------
    def set_matrix(self, class_names: list[str], matrix: list[list[int]]) -> None:
        self.class_names = list(class_names)
        self._counts = np.asarray(matrix, dtype=np.int64).reshape(len(self.class_names), len(self.class_names))
        self.matrix = self._counts   # rows = true classes; counts read with int()
        self.selected = None
        self._heat_key = None
        self.set_order(self.order_kind)

    def clear(self) -> None:
        self.set_matrix([], [])

    def count(self, true: int, predicted: int) -> int:
        return int(self._counts[true, predicted])

    def select(self, cell: tuple[int, int] | None) -> None:
        self.selected = cell
        self.update()

    def set_order(self, kind: str) -> None:
        """"class": the model's class order; "errors": the classes whose images were most often missed first."""
        self.order_kind = kind if kind in ORDERS else "class"
        n = len(self.class_names)
        if self.order_kind == "errors" and n:
            missed = self._counts.sum(1) - np.diag(self._counts)
            wrongly = self._counts.sum(0) - np.diag(self._counts)
            self.order = [int(i) for i in np.lexsort((np.arange(n), -wrongly, -missed))]
        else:
            self.order = list(range(n))
        self._position = {c: i for i, c in enumerate(self.order)}
        self._heat_key = None
        self.updateGeometry()
        self.update()

    def heat_map(self) -> bool:
        return len(self.class_names) > TEXT_LIMIT

    def sizeHint(self) -> QSize:
        return QSize(520, 520)

    # ---- geometry ---------------------------------------------------------------------------------
    def _label_width(self, fm: QFontMetrics, rect: QRect) -> int:
        if self.heat_map():  # measuring 1,000 names is wasted when most are too small to show
            longest = max(self.class_names, key=len, default="")
            width = fm.horizontalAdvance(longest + "M")
        else:
            width = max((fm.horizontalAdvance(name) for name in self.class_names), default=0)
        return min(width, MAX_LABEL_W, max(60, rect.width() // 4))

    def _layout(self, rect: QRect, font: QFont) -> tuple[float, float, float, bool]:
        """(left, top, cell size, rotate column labels) for drawing into `rect`. A heat map whose cells are too
        small for names keeps no room for them (they show on hover and once zoomed in)."""
        fm = QFontMetrics(font)
        n = max(1, len(self.class_names))
        title_h = fm.height() + LABEL_GAP
        for label_w in (self._label_width(fm, rect) + LABEL_GAP, 0):
            left = rect.left() + title_h + label_w
            avail_w = rect.right() - left - 4
            cell = min(MAX_CELL, max(0.25, avail_w / n))
            rotate = label_w > 0 and label_w - LABEL_GAP > cell - 4
            top = rect.top() + title_h + (label_w if rotate else (fm.height() + LABEL_GAP if label_w else 0))
            cell = min(cell, max(0.25, (rect.bottom() - top - 4) / n))
            if not self.heat_map() or self.labels_fit(cell, fm):
                break
        return left, top, cell, rotate

    @staticmethod
    def labels_fit(cell: float, fm: QFontMetrics) -> bool:
        return cell >= fm.height() * 0.8

    def cell_rect(self, true: int, predicted: int) -> QRectF:
        left, top, cell, _ = self._layout(self.contentsRect(), self.font())
        return QRectF(left + self._position[predicted] * cell, top + self._position[true] * cell, cell, cell)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        if not self.class_names:
            return None
        left, top, cell, _ = self._layout(self.contentsRect(), self.font())
        col, row = int((pos.x() - left) // cell), int((pos.y() - top) // cell)
        n = len(self.class_names)
        if pos.x() >= left and pos.y() >= top and 0 <= row < n and 0 <= col < n:
            return self.order[row], self.order[col]
        return None

    def describe(self, true: int, predicted: int) -> str:
        count = int(self._counts[true, predicted])
        total = int(self._counts[true].sum())
        share = f" ({count / total:.1%} of the {total:,} images of {self.class_names[true]})" if total else ""
        what = "correct" if true == predicted else f"called {self.class_names[predicted]}"
        return f"{self.class_names[true]}, {what}: {count:,} image{'s' if count != 1 else ''}{share}"

    # ---- events -----------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select(cell)
            self.cell_clicked.emit(*cell)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and event.angleDelta().y():
            self.zoom_requested.emit(1 if event.angleDelta().y() > 0 else -1, event.position().toPoint())
            event.accept()
            return
        super().wheelEvent(event)

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
        self.paint(painter, self.contentsRect(), self.palette(), self.font(), selected=self.selected)
        painter.end()

    # ---- drawing ----------------------------------------------------------------------------------
    def _heat_image(self, pal: QPalette) -> QImage:
        """One pixel per cell, in display order, blended over the base colour (numpy: 1,000 classes in ms)."""
        key = (pal.color(QPalette.ColorRole.Base).rgb(), pal.color(QPalette.ColorRole.Highlight).rgb())
        if self._heat is not None and self._heat_key == key:
            return self._heat
        order = np.asarray(self.order, dtype=np.int64)
        counts = self._counts[np.ix_(order, order)]   # the same permutation of rows and columns: diagonal stays
        share = counts.astype(np.float32) / np.maximum(counts.sum(1, keepdims=True), 1).astype(np.float32)
        alpha = 110 + 145 * share   # how strongly a cell is coloured: a mistake always shows, even one in thousands
        idx = np.arange(len(order))
        alpha[idx, idx] = 45 + 210 * share[idx, idx]
        alpha[counts == 0] = 0
        alpha *= 1 / 255
        base = pal.color(QPalette.ColorRole.Base).getRgb()[:3]
        accent = pal.color(QPalette.ColorRole.Highlight).getRgb()[:3]
        rgba = np.empty(counts.shape + (4,), dtype=np.uint8)
        rgba[..., 3] = 255
        for ch in range(3):   # base blended towards red (mistakes), then the diagonal towards the accent colour
            plane = base[ch] + (MISTAKE_COLOR.getRgb()[ch] - base[ch]) * alpha
            plane[idx, idx] = base[ch] + (accent[ch] - base[ch]) * alpha[idx, idx]
            rgba[..., ch] = plane + 0.5
        n = len(order)
        self._heat = QImage(np.ascontiguousarray(rgba).data, n, n, 4 * n, QImage.Format.Format_RGBA8888).copy()
        self._heat_key = key
        return self._heat

    def paint(self, p: QPainter, rect: QRect, pal: QPalette, font: QFont, *, selected=None) -> None:
        text = pal.color(QPalette.ColorRole.WindowText)
        if not self.class_names:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "The confusion matrix appears here after an evaluation.")
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setFont(font)
        fm = p.fontMetrics()
        left, top, cell, rotate = self._layout(rect, font)
        n = len(self.class_names)
        title_h = fm.height() + LABEL_GAP
        side = cell * n
        labels = not self.heat_map() or self.labels_fit(cell, fm)
        p.setPen(text)
        bold = QFont(font)
        bold.setBold(True)
        p.setFont(bold)
        bfm = p.fontMetrics()
        hint = "" if labels else " (hover for names)"
        for title, vertical in (("Predicted class" + hint, False), ("True class" + hint, True)):
            width = max(side, bfm.horizontalAdvance(title) + 8)  # centred on the matrix, never clipped
            if vertical:
                p.save()
                p.translate(rect.left(), top + side / 2)
                p.rotate(-90)
                p.drawText(QRectF(-width / 2, 0, width, bfm.height()), Qt.AlignmentFlag.AlignCenter, title)
                p.restore()
            else:
                p.drawText(QRectF(left + side / 2 - width / 2, rect.top(), width, bfm.height()),
                           Qt.AlignmentFlag.AlignCenter, title)
        p.setFont(font)
        label_w = left - rect.left() - title_h
        if labels:
            self._draw_labels(p, fm, rect, left, top, cell, rotate, label_w, title_h)
        if self.heat_map():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            p.drawImage(QRectF(left, top, side, side), self._heat_image(pal))
            p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
            p.drawRect(QRectF(left, top, side, side))
        else:
            self._draw_cells(p, pal, left, top, cell)
        if selected is not None:
            t, c = self._position[selected[0]], self._position[selected[1]]
            p.setPen(QPen(text, 3 if cell >= 6 else 2))
            pad, size = min(1.0, cell / 4), max(cell, 3)
            p.drawRect(QRectF(left + c * cell, top + t * cell, size, size).adjusted(pad, pad, -pad, -pad))

    def _draw_labels(self, p, fm, rect, left, top, cell, rotate, label_w, title_h) -> None:
        clip = p.clipBoundingRect() if p.hasClipping() else QRectF(rect)
        for i, index in enumerate(self.order):
            name = self.class_names[index]
            y = top + i * cell
            x = left + i * cell
            shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, int(label_w - LABEL_GAP))
            if clip.top() - cell <= y <= clip.bottom():
                p.drawText(QRectF(rect.left() + title_h, y, label_w - LABEL_GAP, cell),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, shown)
            if not clip.left() - cell <= x <= clip.right():
                continue
            if rotate:
                p.save()
                p.translate(x + cell / 2 + fm.ascent() / 2 - fm.descent(), top - LABEL_GAP)
                p.rotate(-90)
                p.drawText(0, 0, shown)
                p.restore()
            else:
                p.drawText(QRectF(x, top - fm.height() - LABEL_GAP / 2, cell, fm.height()),
                           Qt.AlignmentFlag.AlignCenter, name)

    def _draw_cells(self, p, pal, left, top, cell) -> None:
        text = pal.color(QPalette.ColorRole.WindowText)
        accent = pal.color(QPalette.ColorRole.Highlight)
        grid = pal.color(QPalette.ColorRole.Mid)
        for row, t in enumerate(self.order):
            counts = self._counts[t].tolist()
            total = sum(counts) or 1
            for col, c in enumerate(self.order):
                count = counts[c]
                r = QRectF(left + col * cell, top + row * cell, cell, cell)
                share = count / total
                alpha = int(45 + 210 * share if t == c else 110 + 145 * share)  # as _alpha, for one cell
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

    def to_image(self, width: int = 1200, palette: QPalette | None = None) -> QImage:
        """The matrix as on screen, drawn into a square of `width` pixels (no selection mark)."""
        pal = palette or self.palette()
        image = QImage(width, width, QImage.Format.Format_ARGB32)
        image.fill(pal.color(QPalette.ColorRole.Base))
        painter = QPainter(image)
        self.paint(painter, QRect(16, 16, width - 32, width - 32), pal, self.font())
        painter.end()
        return image

    def export_image(self, title: str, palette: QPalette | None = None, *, max_side: int = 2400) -> QImage:
        """A framed figure for a PNG: the title above, the matrix as large as its labels allow (cells of 12 to 72
        px, at most max_side px in all), axis names that fit, and no selection mark."""
        pal = palette or self.palette()
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() if font.pointSizeF() > 0 else 10.0, 11.0))
        fm = QFontMetrics(font)
        n = max(1, len(self.class_names))
        label = min(max((fm.horizontalAdvance(c) for c in self.class_names), default=40), MAX_LABEL_W) + LABEL_GAP
        cell = max(12.0, min(MAX_CELL, (max_side - 3 * label) / n))
        if self.heat_map():  # labels need a cell of a line's height; beyond ~300 classes the figure is a heat map only
            cell = max(cell, fm.height()) if n * fm.height() <= 6000 else max(2.0, (max_side - 3 * label) / n)
        else:
            cell = max(cell, fm.horizontalAdvance(f"{int(self._counts.max(initial=0)):,}") + 10)
        title_font = QFont(font)
        title_font.setBold(True)
        title_font.setPointSizeF(font.pointSizeF() * 1.3)
        tfm = QFontMetrics(title_font)
        margin = 24
        head = tfm.height() + 2 * LABEL_GAP
        rotate = label - LABEL_GAP > cell - 4
        axis = fm.height() + LABEL_GAP
        grid_w = int(axis + label + cell * n + 6)
        grid_h = int(axis + (label if rotate else axis) + cell * n + 6)
        width = max(grid_w, tfm.horizontalAdvance(title) + 8) + 2 * margin
        image = QImage(int(width), int(grid_h + head + 2 * margin), QImage.Format.Format_ARGB32)
        image.fill(pal.color(QPalette.ColorRole.Base))
        p = QPainter(image)
        p.setFont(title_font)
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        p.drawText(QRectF(margin, margin, width - 2 * margin, head), Qt.AlignmentFlag.AlignCenter, title)
        self.paint(p, QRect(int((width - grid_w) / 2), int(margin + head), grid_w, grid_h), pal, font)
        p.end()
        return image
