"""Likely label mistakes as a gallery: each image with the class it is filed under, the class it looks like and
how much the judge doubts the given one, best first. Per image (several can be selected):

* Relabel for training: the run trains it as the suggested class (TrainConfig.relabel); the folder is unchanged.
* Exclude: the run leaves it out (TrainConfig.exclude); the folder is unchanged.
* It is right: taken off the list of things to act on.
* Move file: only when asked, the file is moved into the suggested class folder (one rename), with Undo.

The search runs in a worker (label_task) with progress and Cancel; it writes nothing."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import plural

from .qimages import pil_to_qimage

THUMBNAIL_PX = 48
MAX_SHOWN = 500
NAME_PX = 80             # the least a file name keeps beside its thumbnail in a narrow list
DECISION_PX = 90         # room kept for the decision column
PATH_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class LabelOutcome:
    folder: str
    report: object                                    # core.evaluation.label_issues.LabelReport
    thumbnails: dict = field(default_factory=dict)    # path -> QImage


def label_task(report, stop, folder: str, model: str | None):
    """Worker: the label check of `folder` (judged by `model`, a registry name or file, or by thumbnails)."""
    from resnet_gui.core.errors import Cancelled, ImageLoadError
    from resnet_gui.core.evaluation.label_sources import check_labels
    from resnet_gui.core.images import load_image
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    result = check_labels(folder, model=model, progress=progress)
    thumbs = {}
    for n, issue in enumerate(result.issues[:MAX_SHOWN]):
        if stop.is_set():
            raise Cancelled()
        try:
            thumbs[issue.path] = pil_to_qimage(_thumbnail(load_image(issue.path, min_side=THUMBNAIL_PX)), THUMBNAIL_PX)
        except (ImageLoadError, OSError):
            continue
        progress.update("Making thumbnails", n + 1, min(len(result.issues), MAX_SHOWN))
    return LabelOutcome(folder, result, thumbs)


def _thumbnail(image):
    """Small images (a 32 px digit) enlarged to the thumbnail size, so that the gallery shows them legibly."""
    from PIL import Image

    side = max(image.size)
    if side >= THUMBNAIL_PX:
        return image
    scale = THUMBNAIL_PX / side
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BICUBIC)


def doubt_text(score: float) -> str:
    """The doubt as a percentage with enough decimals to show how far it is from certainty: 0.99996 -> 99.996 %."""
    rest = max(0.0, 1.0 - float(score)) * 100
    if rest <= 0:
        return "100 %"
    decimals = min(4, max(1, math.ceil(-math.log10(rest))))
    if round(rest, decimals) == 0:            # closer to certain than 4 decimals show
        return f"> {100 - 10 ** -decimals:.{decimals}f} %"
    return f"{100 - rest:.{decimals}f} %"


class LabelIssuesView(QWidget):
    decisions_changed = Signal()        # relabel or excluded changed
    file_moved = Signal(str, str)       # old path, new path (a move or its undo)

    def __init__(self, training_decisions: bool = True, parent=None):
        super().__init__(parent)
        self.outcome: LabelOutcome | None = None
        self.relabel: dict[str, str] = {}     # path -> class it is trained under
        self.excluded: set[str] = set()
        self.confirmed: set[str] = set()      # "it is right"
        self._moves: list[tuple[str, str, str, str]] = []   # (old, new, given, target), newest last
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.summary)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["Image", "Filed as", "Looks like", "Doubt", "Decision"])
        self.list.headerItem().setToolTip(3, "How much the judge doubts the class the image is filed under: 100 % "
                                             "minus its probability of that class")
        self.list.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.list.setRootIsDecorated(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setAccessibleName("Likely label mistakes")
        self.list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.list, 1)
        row = QGridLayout()     # two rows: the panel in the Train tab is narrow
        self.relabel_button = QPushButton("Relabel for training")
        self.relabel_button.setToolTip("Train the selected images as the class they look like; the files stay "
                                       "where they are")
        self.relabel_button.clicked.connect(self.relabel_selected)
        self.exclude_button = QPushButton("Exclude")
        self.exclude_button.setToolTip("Leave the selected images out of the training run; the files stay")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.right_button = QPushButton("It is right")
        self.right_button.setToolTip("The label is right: no change for the selected images")
        self.right_button.clicked.connect(self.confirm_selected)
        self.move_button = QPushButton("Move file")
        self.move_button.setToolTip("Move the selected files into the folder of the class they look like "
                                    "(this changes your folder; Undo moves them back)")
        self.move_button.clicked.connect(self.move_selected)
        self.undo_button = QPushButton("Undo move")
        self.undo_button.clicked.connect(self.undo_move)
        for n, w in enumerate((self.relabel_button, self.exclude_button, self.right_button)):
            row.addWidget(w, 0, n)
        row.addWidget(self.move_button, 1, 0)
        row.addWidget(self.undo_button, 1, 1)
        row.setColumnStretch(3, 1)
        layout.addLayout(row)
        for w in (self.relabel_button, self.exclude_button):
            w.setVisible(training_decisions)
        self._update_buttons()

    # ---- results ----------------------------------------------------------------------------------
    def set_outcome(self, outcome: LabelOutcome) -> None:
        if self.outcome is None or self.outcome.folder != outcome.folder:
            self.relabel, self.excluded, self.confirmed, self._moves = {}, set(), set(), []
        self.outcome = outcome
        report = outcome.report
        shown = report.issues[:MAX_SHOWN]
        head = (f"{plural(len(report.issues), 'image')} of {report.checked:,} may be filed under the wrong class, "
                f"most doubtful first (judged by {report.method})." if report.issues else
                f"No likely label mistakes among {report.checked:,} images (judged by {report.method}).")
        more = f" The first {len(shown):,} are shown." if len(shown) < len(report.issues) else ""
        self.summary.setText(head + more + "".join(f"\n⚠ {w}" for w in report.warnings[:5]))
        self.list.clear()
        for issue in shown:
            item = QTreeWidgetItem([Path(issue.path).name, issue.given, issue.suggested, doubt_text(issue.score), ""])
            item.setData(0, PATH_ROLE, issue.path)
            item.setToolTip(0, issue.path)
            thumb = outcome.thumbnails.get(issue.path)
            if thumb is not None:
                item.setIcon(0, QIcon(QPixmap.fromImage(thumb)))
            self.list.addTopLevelItem(item)
        self._fit_columns()
        self.list.header().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self._refresh()

    def _fit_columns(self) -> None:
        """Columns sized to their contents; where the list is narrow (the Train tab's panel) long file names give
        way, keeping their end (the tooltip has the path), so that the decision stays in view."""
        for column in range(4):
            self.list.resizeColumnToContents(column)
        others = sum(self.list.columnWidth(c) for c in (1, 2, 3)) + DECISION_PX
        room = max(THUMBNAIL_PX + NAME_PX, self.list.viewport().width() - others)
        self.list.setColumnWidth(0, min(self.list.columnWidth(0), room))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.list.topLevelItemCount():
            self._fit_columns()

    def items(self) -> list[QTreeWidgetItem]:
        return [self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount())]

    def _selected(self) -> list[QTreeWidgetItem]:
        return [i for i in self.list.selectedItems() if i.data(0, PATH_ROLE)]

    # ---- decisions --------------------------------------------------------------------------------
    def relabel_selected(self) -> None:
        for item in self._selected():
            path = item.data(0, PATH_ROLE)
            self.relabel[path] = item.text(2)
            self.excluded.discard(path)
            self.confirmed.discard(path)
        self._changed()

    def exclude_selected(self) -> None:
        for item in self._selected():
            path = item.data(0, PATH_ROLE)
            self.excluded.add(path)
            self.relabel.pop(path, None)
            self.confirmed.discard(path)
        self._changed()

    def confirm_selected(self) -> None:
        for item in self._selected():
            path = item.data(0, PATH_ROLE)
            self.confirmed.add(path)
            self.relabel.pop(path, None)
            self.excluded.discard(path)
        self._changed()

    def move_selected(self) -> None:
        from resnet_gui.core.data.folders import move_to_class
        from resnet_gui.core.errors import DatasetError

        problems = []
        for item in self._selected():
            path, given, target = item.data(0, PATH_ROLE), item.text(1), item.text(2)
            try:
                new = str(move_to_class(path, given, target))
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            self._moves.append((path, new, given, target))
            self.relabel.pop(path, None)
            self.excluded.discard(path)
            item.setData(0, PATH_ROLE, new)
            item.setText(1, target)
            item.setToolTip(0, new)
            self.file_moved.emit(path, new)
        self._changed(problems)

    def undo_move(self) -> None:
        from resnet_gui.core.data.folders import move_to_class
        from resnet_gui.core.errors import DatasetError

        if not self._moves:
            return
        old, new, given, target = self._moves[-1]
        try:
            move_to_class(new, target, given)
        except DatasetError as exc:
            self._changed([str(exc)])
            return
        self._moves.pop()
        for item in self.items():
            if item.data(0, PATH_ROLE) == new:
                item.setData(0, PATH_ROLE, old)
                item.setText(1, given)
                item.setToolTip(0, old)
        self.file_moved.emit(new, old)
        self._changed()

    def moved(self) -> list[tuple[str, str]]:
        return [(old, new) for old, new, _, _ in self._moves]

    def _changed(self, problems: list[str] | None = None) -> None:
        self._refresh(problems)
        self.decisions_changed.emit()

    def _refresh(self, problems: list[str] | None = None) -> None:
        moved = {new for _, new, _, _ in self._moves}
        for item in self.items():
            path = item.data(0, PATH_ROLE)
            item.setText(4, f"train as {self.relabel[path]}" if path in self.relabel else
                         "left out" if path in self.excluded else
                         "right" if path in self.confirmed else
                         f"moved to {Path(path).parent.name}/" if path in moved else "")
            item.setToolTip(4, "trained as the class it looks like; the file stays" if path in self.relabel else
                            "left out of the training run; the file stays" if path in self.excluded else
                            "the label is right as filed" if path in self.confirmed else "")
        if problems:
            self.summary.setText(self.summary.text().split("\n✖")[0] + "".join(f"\n✖ {p}" for p in problems[:3]))
        self._update_buttons()

    def _update_buttons(self) -> None:
        any_selected = bool(self._selected())
        for w in (self.relabel_button, self.exclude_button, self.right_button, self.move_button):
            w.setEnabled(any_selected)
        self.undo_button.setEnabled(bool(self._moves))
