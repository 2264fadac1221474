"""The Train tab's data panel: find, download or locate CIFAR-10; or choose a class folder and see its
classes, counts and warnings. Its banner speaks only about the data on screen: it clears when the
recipe or the folder changes."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import decimal_size, plural, sentence

from ..common.widgets import Banner
from .session import CifarStatus, ScanResult, TrainSession

CIFAR_BYTES = 170_498_071  # cifar-10-python.tar.gz
SHOWN_CLASSES = 20
FOLDER_HINT = "Layout: folder/cats/*.jpg, folder/dogs/*.jpg … or folder/train/… and folder/val/…"


CIFAR_COUNTS = (50_000, 10_000)  # training and test images
NO_FOLDER = "Choose a folder with one sub-folder per class first."
NO_CIFAR = "CIFAR-10 is not here yet: download it, or locate a folder that holds it."
DOWNLOADING = "CIFAR-10 is still downloading."


class DataPanel(QGroupBox):
    data_changed = Signal()        # other data on screen, or what is known about it (problem()) changed

    def __init__(self, session: TrainSession, settings, split_params: Callable[[], tuple[float, int]], parent=None):
        super().__init__("Data", parent)
        self.session = session
        self.settings = settings
        self.split_params = split_params  # (validation split, seed) of the form
        self.mode = "cifar10"
        self._problems = {"cifar10": None, "folder": NO_FOLDER}
        self._scan: ScanResult | None = None  # the last good scan  # what is known to be wrong with each kind of data
        layout = QVBoxLayout(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._cifar_page())
        self.stack.addWidget(self._folder_page())
        layout.addWidget(self.stack)
        self.banner = Banner()
        layout.addWidget(self.banner)
        session.cifar_check.done.connect(self._cifar_status)
        session.download.started.connect(self._download_started)
        session.download.progress.connect(self._download_progress)
        session.download.done.connect(self._downloaded)
        session.download.failed.connect(self._download_failed)
        session.download.busy_changed.connect(self._download_running)
        session.folder_scan.done.connect(self._scanned)
        session.folder_scan.failed.connect(self._scan_failed)

    def _cifar_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)
        self.cifar_location = QLineEdit()
        self.cifar_location.setPlaceholderText("The app's data folder")
        self.cifar_location.setToolTip("A folder holding cifar-10-batches-py or cifar-10-python.tar.gz")
        self.cifar_location.editingFinished.connect(self.check_cifar)
        self.cifar_location.textChanged.connect(lambda _text: self._set_problem("cifar10", None))
        locate = QPushButton("Locate…")
        locate.clicked.connect(self.browse_cifar)
        self.cifar_status = QLabel("")
        self.cifar_status.setWordWrap(True)
        self.cifar_status.setTextFormat(Qt.TextFormat.PlainText)
        self.download_button = QPushButton(f"Download CIFAR-10 ({decimal_size(CIFAR_BYTES)})")
        self.download_button.clicked.connect(self.download_cifar)
        self.download_progress = QProgressBar()
        self.download_progress.hide()
        self.download_cancel = QPushButton("Cancel")
        self.download_cancel.hide()
        self.download_cancel.clicked.connect(self.session.download.cancel)
        grid.addWidget(QLabel("Location:"), 0, 0)
        grid.addWidget(self.cifar_location, 0, 1)
        grid.addWidget(locate, 0, 2)
        grid.addWidget(self.cifar_status, 1, 0, 1, 3)
        row = QHBoxLayout()
        row.addWidget(self.download_button)
        row.addWidget(self.download_progress, 1)
        row.addWidget(self.download_cancel)
        grid.addLayout(row, 2, 0, 1, 3)
        return page

    def _folder_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("A folder with one sub-folder per class")
        self.folder_edit.editingFinished.connect(self.scan_folder)
        self.folder_edit.textChanged.connect(
            lambda text: self._set_problem("folder", None if text.strip() else NO_FOLDER))
        choose = QPushButton("Choose…")
        choose.clicked.connect(self.browse_folder)
        self.folder_summary = QLabel(FOLDER_HINT)
        self.folder_summary.setWordWrap(True)
        self.folder_summary.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(QLabel("Folder:"), 0, 0)
        grid.addWidget(self.folder_edit, 0, 1)
        grid.addWidget(choose, 0, 2)
        grid.addWidget(self.folder_summary, 1, 0, 1, 3)
        return page

    # ---- mode and settings ------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.stack.setCurrentIndex(0 if mode == "cifar10" else 1)
        self.banner.clear_message()  # a CIFAR-10 problem says nothing about a folder, and the reverse
        self.data_changed.emit()
        self.refresh()

    def problem(self) -> str | None:
        """What is known to be wrong with the data on screen (a sentence), or None: nothing known yet, or usable.
        Training cannot start while there is one."""
        return self._problems["cifar10" if self.mode == "cifar10" else "folder"]

    def image_counts(self) -> tuple[int, int]:
        """(training, validation) images of the data on screen: CIFAR-10's, or the last scan's; (0, 0) while
        unknown or unusable."""
        if self.problem() is not None:
            return 0, 0
        if self.mode == "cifar10":
            return CIFAR_COUNTS
        scan = self._scan
        if scan is None or scan.folder != self.location():
            return 0, 0
        return sum(scan.train.values()), sum(scan.val.values())

    def _set_problem(self, kind: str, problem: str | None) -> None:
        self._problems[kind] = problem
        self.data_changed.emit()

    def refresh(self) -> None:
        if self.mode == "cifar10":
            self.check_cifar()
        elif self.folder_edit.text().strip():
            self.scan_folder()

    def location(self) -> str | None:
        text = self.cifar_location.text() if self.mode == "cifar10" else self.folder_edit.text()
        return text.strip() or None

    def load_settings(self) -> None:
        self.cifar_location.setText(self.settings.get("train.cifar_location") or "")
        self.folder_edit.setText(self.settings.get("train.folder") or "")

    def save_settings(self) -> None:
        self.settings.set("train.cifar_location", self.cifar_location.text())
        self.settings.set("train.folder", self.folder_edit.text())

    # ---- CIFAR-10 ---------------------------------------------------------------------------------
    def browse_cifar(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder holding CIFAR-10 (cifar-10-batches-py or the archive)",
                                                  self.cifar_location.text() or str(Path.home()))
        if folder:
            self.cifar_location.setText(folder)
            self.banner.clear_message()
            self.check_cifar()

    def check_cifar(self) -> None:
        self.session.check_cifar(self.cifar_location.text().strip() or None)

    def _cifar_status(self, status: CifarStatus) -> None:
        downloading = self.session.download.busy()
        if status.found:
            self.cifar_status.setText(f"✓ CIFAR-10 found in {status.root}.")
            self._set_problem("cifar10", None)
        elif status.tarball:
            self.cifar_status.setText(f"✓ CIFAR-10 archive found: {status.tarball} (extracted when training starts).")
            self._set_problem("cifar10", None)
        else:
            self.cifar_status.setText(f"CIFAR-10 is not in {status.root} yet. Download it, or locate a folder that "
                                      "holds cifar-10-batches-py or cifar-10-python.tar.gz.")
            self._set_problem("cifar10", DOWNLOADING if downloading else NO_CIFAR)
        self.download_button.setVisible(not (status.found or status.tarball) or downloading)

    def download_cifar(self) -> None:
        self.banner.clear_message()
        self.session.download_cifar(self.cifar_location.text().strip() or None)

    def _download_started(self) -> None:
        self.download_progress.setRange(0, 0)
        self.download_progress.setFormat("Starting the download…")

    def _download_running(self, running: bool) -> None:
        if running:
            self._set_problem("cifar10", DOWNLOADING)
        elif self._problems["cifar10"] == DOWNLOADING:
            self._set_problem("cifar10", NO_CIFAR)  # until the check after it says otherwise
        self.download_button.setEnabled(not running)
        self.download_progress.setVisible(running)
        self.download_cancel.setVisible(running)

    def _download_progress(self, value: tuple[str, int, int]) -> None:
        what, done, total = value
        if total:
            self.download_progress.setRange(0, 1000)
            self.download_progress.setValue(int(1000 * done / total))
            self.download_progress.setFormat(f"{what}: {decimal_size(done)} of {decimal_size(total)}")
        else:
            self.download_progress.setFormat(f"{what}: {decimal_size(done)}")

    def _downloaded(self, path: str) -> None:
        self.banner.show_message(f"CIFAR-10 is ready in {path}.", "success")
        self.check_cifar()

    def _download_failed(self, failure) -> None:
        self.banner.show_message(failure.message, "error",
                                 [("Try again", self.download_cifar), ("Locate…", self.browse_cifar)])

    # ---- folders ----------------------------------------------------------------------------------
    def browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder (one sub-folder per class)",
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)
            self.scan_folder()

    def scan_folder(self) -> None:
        folder = self.folder_edit.text().strip()
        if not folder or not self.session.ready:
            return
        self.folder_summary.setText("Scanning…")
        self._set_problem("folder", None)  # not known until the scan says
        val_split, seed = self.split_params()
        self.session.scan(folder, val_split, seed)

    def _scanned(self, scan: ScanResult) -> None:
        self._scan = scan
        self.banner.clear_message()
        counts = ", ".join(f"{c} {scan.train[c]}+{scan.val[c]}" for c in scan.classes[:SHOWN_CLASSES])
        more = f" … ({len(scan.classes):,} classes)" if len(scan.classes) > SHOWN_CLASSES else ""
        layout = "train/ and val/ folders" if scan.layout == "split" else "a validation split from each class"
        classes = plural(len(scan.classes), "class", "classes")
        text = (f"✓ {classes}: {plural(sum(scan.train.values()), 'training image')}"
                f" and {plural(sum(scan.val.values()), 'validation image')} ({layout}).\n"
                f"Per class (training+validation): {counts}{more}.")
        for warning in scan.warnings:
            text += f"\n⚠ {sentence(warning)}"
        if scan.unreadable:
            shown = ", ".join(Path(p).name for p in scan.unreadable[:5])
            text += (f"\n⚠ {plural(len(scan.unreadable), 'file')} with an image name "
                     f"{'is' if len(scan.unreadable) == 1 else 'are'} not readable and will be skipped: {shown}"
                     f"{', …' if len(scan.unreadable) > 5 else ''}.")
        self.folder_summary.setText(text)
        self._set_problem("folder", None)

    def _scan_failed(self, failure) -> None:
        self.folder_summary.setText(FOLDER_HINT)
        self._set_problem("folder", failure.message)
        self.banner.show_message(failure.message, "error", [("Choose…", self.browse_folder)])
