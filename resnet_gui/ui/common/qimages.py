"""Images between PIL, numpy and Qt. Every QImage made here owns a deep copy of its pixels, so a worker thread
can make one and hand it to the GUI thread."""
from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage


def _rgb888(data: bytes, width: int, height: int) -> QImage:
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def pil_to_qimage(image, max_side: int | None = None) -> QImage:
    """A PIL image (any mode) as an RGB QImage, reduced to fit `max_side` when it is larger."""
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    image = image.convert("RGB")
    return _rgb888(image.tobytes("raw", "RGB"), image.width, image.height)


def rgb_array_to_qimage(pixels) -> QImage:
    """An H x W x 3 uint8 numpy array as a QImage."""
    return _rgb888(pixels.tobytes(), pixels.shape[1], pixels.shape[0])


def qimage_to_png_bytes(image: QImage) -> bytes:
    """A QImage (pasted or dropped) as PNG file bytes, the form core.images.load_image reads."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())
