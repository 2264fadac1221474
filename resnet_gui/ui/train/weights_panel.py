"""Fine-tuning's ImageNet weights, as a step before Start like CIFAR-10's: whether this computer has them,
Download ImageNet weights (45 MB) with progress and Cancel, or Locate a file… (a local copy, for offline labs).
A download that fails says why in one sentence (offline, refused, timed out)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from resnet_gui.text import decimal_size

from ..common.failures import Failure
from ..common.widgets import plain_label
from ..common.workers import TaskSlot


@dataclass(frozen=True)
class WeightsStatus:
    arch: str
    cached: bool
    file_name: str
    size_bytes: int | None   # torchvision's figure for the file, when it has one


def weights_status_task(report, stop, arch: str) -> WeightsStatus:
    import torchvision

    from resnet_gui.core.models.archs import ARCHS
    from resnet_gui.core.models.build import imagenet_weights_path

    weights = torchvision.models.get_model_weights(ARCHS[arch].builder).DEFAULT
    path = imagenet_weights_path(arch)
    megabytes = weights.meta.get("_file_size")
    return WeightsStatus(arch, path.is_file(), path.name,
                         int(megabytes * 1_000_000) if isinstance(megabytes, (int, float)) else None)


def weights_download_task(report, stop, arch: str) -> str:
    from resnet_gui.core.models.build import fetch_imagenet_weights
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    return str(fetch_imagenet_weights(arch, progress=progress))


class WeightsPanel(QWidget):
    """The Model box's ImageNet weights row (fine-tuning only)."""

    changed = Signal()   # downloaded, or a local copy chosen: what Start will use changed

    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.status = plain_label()
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Downloaded once, then kept")
        self.edit.setToolTip("Leave empty to use torchvision's ImageNet weights (downloaded once into the cache), "
                             "or locate a local copy of that file")
        self.edit.textChanged.connect(lambda _text: self._show())
        self.locate_button = QPushButton("Locate a file…")
        self.locate_button.clicked.connect(self.locate)
        self.download_button = QPushButton("Download ImageNet weights")
        self.download_button.clicked.connect(self.download)
        self.download_button.hide()  # until the check says they are missing
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        grid.addWidget(self.status, 0, 0, 1, 3)
        grid.addWidget(self.edit, 1, 0, 1, 2)
        grid.addWidget(self.locate_button, 1, 2)
        grid.addWidget(self.download_button, 2, 0)
        grid.addWidget(self.progress, 2, 1)
        grid.addWidget(self.cancel_button, 2, 2)
        grid.setColumnStretch(1, 1)
        self.arch: str | None = None
        self.known: WeightsStatus | None = None
        self.error: str | None = None
        self._check = TaskSlot("weights-check", self)
        self._download = TaskSlot("weights-download", self)
        self.cancel_button.clicked.connect(self._download.cancel)
        self._download.busy_changed.connect(self._downloading)
        self._download.progress.connect(self._progress)

    def set_arch(self, arch: str) -> None:
        """The form's architecture (PyTorch has loaded): find whether its weights are here, in a worker."""
        if arch != self.arch:
            self._download.cancel()
            self.arch, self.known, self.error = arch, None, None
            self._show()
        self._check.start(weights_status_task, arch, on_done=self._checked, on_failed=self._check_failed)

    def _checked(self, status: WeightsStatus) -> None:
        if status.arch == self.arch:
            self.known = status
            self._show()

    def _check_failed(self, failure: Failure) -> None:
        self.known, self.error = None, failure.message
        self._show()

    def _size_words(self) -> str:
        size = self.known.size_bytes if self.known else None
        return f" ({decimal_size(size)})" if size else ""

    def _show(self) -> None:
        downloading = self._download.busy()
        local = self.edit.text().strip()
        self.download_button.setText(f"Download ImageNet weights{self._size_words()}")
        if local:
            text = "Fine-tuning starts from the local copy below."
        elif self.error:
            text = self.error
        elif self.known is None:
            text = "Finding out whether this computer has the ImageNet weights…" if self.arch else ""
        elif self.known.cached:
            text = f"✓ The ImageNet weights of {self.known.arch} are on this computer."
        else:
            text = (f"Fine-tuning starts from {self.known.arch}'s ImageNet weights{self._size_words()}, downloaded "
                    "once. Download them now, or locate a copy of "
                    f"{self.known.file_name}.")
        self.status.setText(text)
        missing = not local and self.known is not None and not self.known.cached
        self.download_button.setVisible(missing or downloading)
        self.download_button.setEnabled(not downloading)

    def needs_download(self) -> bool:
        """Known to be missing, with no local copy given (Start would download them first)."""
        return not self.edit.text().strip() and self.known is not None and not self.known.cached

    def download(self) -> None:
        if self.arch is None or self._download.busy():
            return
        self.error = None
        self._download.start(weights_download_task, self.arch, on_done=self._downloaded,
                             on_failed=self._download_failed)

    def _downloading(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
            self.progress.setFormat("Starting the download…")
        self._show()

    def _progress(self, value) -> None:
        what, done, total = value
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{decimal_size(done)} of {decimal_size(total)}")

    def _downloaded(self, _path: str) -> None:
        self.error = None
        if self.arch is not None:
            self.set_arch(self.arch)
        self.changed.emit()

    def _download_failed(self, failure: Failure) -> None:
        self.error = failure.message
        self._show()

    def locate(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ImageNet weights file", self.edit.text() or "",
                                              "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.edit.setText(path)
            self.changed.emit()

    def cancel(self) -> None:
        self._check.cancel()
        self._download.cancel()
