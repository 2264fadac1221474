"""The Train tab's dataset health check: after a folder is scanned, every image is read once (in a worker,
with progress and Cancel) and the problems are listed with thumbnails: unreadable files, exact and near
duplicates, duplicates that cross the train/validation split, images much smaller than the model's input.

Ticking a file leaves it out of the training run (the run's "exclude" list); the user's folder is never
touched. "Leave out the usual" ticks what core suggests: unreadable files and all but one of each
duplicate group. "Find label mistakes" lists the images whose class looks wrong (common.label_issues_view):
relabelled ones go into the run's "relabel" map, excluded ones into "exclude". When the classes are imbalanced, a
button sets the form's remedy (core suggests which)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from resnet_gui.text import plural

from ..common.label_issues_view import LabelIssuesView, LabelOutcome, label_task
from ..common.qimages import pil_to_qimage
from ..common.widgets import show_progress
from ..common.workers import TaskSlot

THUMBNAIL_PX = 40
MAX_THUMBNAILS = 400
MANY_EXCLUDED = 0.2         # leaving out more than this share of the images earns a warning
PATH_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class HealthResult:
    folder: str
    report: object                          # core.datacheck.DataReport
    thumbnails: dict = field(default_factory=dict)   # path -> QImage, for the files listed


def problem_paths(report) -> list[str]:
    """Every file the report names, in the order the list shows them."""
    paths = [u["path"] for u in report.unreadable]
    for group in report.exact_duplicates + report.near_duplicates:
        paths.extend(group)
    for leak in report.leakage:
        paths.extend(leak["train"] + leak["held_out"])
    paths.extend(s["path"] for s in report.small_images)
    return list(dict.fromkeys(paths))


def health_task(report, stop, folder: str, val_split: float, seed: int, arch: str, image_size: int | None):
    from resnet_gui.core.errors import Cancelled, ImageLoadError
    from resnet_gui.core.evaluation.health import check_folder
    from resnet_gui.core.images import load_image
    from resnet_gui.core.models.archs import arch_info
    from resnet_gui.core.progress import Progress

    size = image_size or arch_info(arch).input_size  # not models.default_preprocess: it imports torchvision
    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    data = check_folder(folder, val_split=val_split, seed=seed, input_size=size, progress=progress)
    thumbs = {}
    unreadable = {u["path"] for u in data.unreadable}
    for path in problem_paths(data)[:MAX_THUMBNAILS]:
        if stop.is_set():
            raise Cancelled()
        if path in unreadable:
            continue
        try:
            thumbs[path] = pil_to_qimage(load_image(path, name=path, min_side=THUMBNAIL_PX), THUMBNAIL_PX)
        except (ImageLoadError, OSError):
            continue
    return HealthResult(folder, data, thumbs)


class DataHealthPanel(QGroupBox):
    excluded_changed = Signal(int)          # how many files are left out now
    balance_requested = Signal(str)         # the remedy for class imbalance to train with (TrainConfig.balance)

    def __init__(self, parent=None):
        super().__init__("Dataset health", parent)
        self.result: HealthResult | None = None
        self.excluded: set[str] = set()
        self.folder: str | None = None
        self._summary_before = ""
        self._outside: tuple[dict[str, str], set[str]] = ({}, set())   # label decisions from the Evaluate tab
        self._slot = TaskSlot("data-health", self)
        self._slot.busy_changed.connect(self._busy)
        self._label_slot = TaskSlot("label-check", self)
        self._label_slot.busy_changed.connect(self._busy)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("Choose a folder: its images are checked for problems before training.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        top.addWidget(self.summary, 1)
        self.balance_button = QPushButton("Balance the classes")
        self.balance_button.clicked.connect(self._request_balance)
        top.addWidget(self.balance_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)
        self._balance = "none"  # the form's current remedy (set_balance)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.tree.setMinimumHeight(260)
        self.tree.setUniformRowHeights(False)
        self.tree.setAccessibleName("Problems found in the dataset")
        self.tree.itemChanged.connect(self._item_changed)
        layout.addWidget(self.tree, 1)
        buttons = QHBoxLayout()
        self.suggest_button = QPushButton("Leave out the usual")
        self.suggest_button.setToolTip("Tick the unreadable files and all but one copy of each duplicate")
        self.suggest_button.clicked.connect(self.exclude_suggested)
        self.include_button = QPushButton("Include all")
        self.include_button.clicked.connect(self.include_all)
        self.excluded_label = QLabel("")
        self.excluded_label.setWordWrap(True)
        self.labels_button = QPushButton("Find label mistakes")
        self.labels_button.setToolTip("Look for images filed under the wrong class (5-fold logistic regression on "
                                      "small thumbnails: good for digits and scans; for photographs, use a model "
                                      "in the Evaluate tab)")
        self.labels_button.clicked.connect(self.find_label_mistakes)
        buttons.addWidget(self.suggest_button)
        buttons.addWidget(self.include_button)
        buttons.addStretch(1)
        buttons.addWidget(self.labels_button)
        layout.addLayout(buttons)
        self.labels = LabelIssuesView(training_decisions=True)
        self.labels.setMinimumHeight(340)
        self.labels.decisions_changed.connect(self._update_excluded)
        self.labels.file_moved.connect(self._file_moved)
        self.labels.hide()
        layout.addWidget(self.labels, 1)
        layout.addWidget(self.excluded_label)
        self._busy(False)
        self._show_lists(False)
        self.labels_button.hide()
        self._update_balance()

    # ---- running ----------------------------------------------------------------------------------
    def check(self, folder: str, val_split: float, seed: int, arch: str, image_size: int | None) -> None:
        if self.result is None or self.result.folder != folder:
            self.excluded = set()  # a choice about another folder's files
        if self.folder != folder:
            self._label_slot.cancel()
            self.labels.hide()
            self.labels.outcome = None
            self.labels.relabel, self.labels.excluded = {}, set()
            self._outside = ({}, set())
        self.folder = folder
        self.labels_button.show()
        self.summary.setText(f"Checking every image in {folder}…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self._slot.start(health_task, folder, val_split, seed, arch, image_size, on_progress=self._progress,
                         on_done=self._done, on_failed=self._failed)

    def cancel(self) -> None:
        if self._label_slot.busy():
            self._label_slot.cancel()
            self.summary.setText("The search for label mistakes was cancelled; nothing was changed.")
            return
        self._slot.cancel()
        self.summary.setText("The health check was cancelled; training can still start (press Check again to "
                             "look later).")

    def find_label_mistakes(self) -> None:
        if not self.folder or self.busy():
            return
        self._summary_before = self.summary.text()
        self.summary.setText(f"Looking for images filed under the wrong class in {self.folder}…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self._label_slot.start(label_task, self.folder, None, on_progress=self._progress, on_done=self._labels_done,
                               on_failed=self._labels_failed)

    def _labels_done(self, outcome: LabelOutcome) -> None:
        if outcome.folder != self.folder:
            return
        self.labels.set_outcome(outcome)
        self.labels.show()
        self.excluded_label.show()
        self.summary.setText(self._summary_before)   # the list says what it found
        self._update_excluded()

    def _labels_failed(self, failure) -> None:
        self.summary.setText(f"Label mistakes could not be looked for: {failure.message}")

    def _file_moved(self, _old: str, _new: str) -> None:
        self.summary.setText("A file was moved between class folders: scan the folder again to update the counts "
                             "and the checks.")

    def apply_decisions(self, folder: str, relabel: dict[str, str], exclude: set[str]) -> None:
        """Label decisions taken elsewhere (the Evaluate tab) for files of `folder`."""
        if self.folder is None or Path(folder).expanduser() != Path(self.folder).expanduser():
            return
        self._outside = (dict(relabel), set(exclude))
        self._update_excluded()

    def relabel_map(self, folder: str | None) -> dict[str, str]:
        """The files of `folder` to train under another class (absolute path -> class); none for another folder."""
        if self.folder is None or folder is None or Path(folder).expanduser() != Path(self.folder).expanduser():
            return {}
        chosen = {**self._outside[0], **self.labels.relabel}
        return {str(Path(p).expanduser().absolute()): c for p, c in sorted(chosen.items())}

    def clear(self) -> None:
        self._slot.cancel()
        self._label_slot.cancel()
        self.result = None
        self.folder = None
        self.excluded = set()
        self.labels.relabel, self.labels.excluded = {}, set()
        self.labels.hide()
        self.labels_button.hide()
        self.tree.clear()
        self._show_lists(False)
        self._update_balance()
        self.summary.setText("Choose a folder: its images are checked for problems before training.")
        self.excluded_changed.emit(0)

    def busy(self) -> bool:
        return self._slot.busy() or self._label_slot.busy()

    def _busy(self, _busy: bool) -> None:
        busy = self.busy()
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.labels_button.setEnabled(not busy)

    def _progress(self, value) -> None:
        show_progress(self.progress, *value)

    def _failed(self, failure) -> None:
        self.summary.setText(f"The health check could not run: {failure.message}")

    # ---- the report -------------------------------------------------------------------------------
    def _done(self, result: HealthResult) -> None:
        self.result = result
        report = result.report
        listed = set(problem_paths(report))
        self.excluded &= listed
        n = report.problems
        self.summary.setText(
            (f"{plural(report.images, 'image')} checked: {plural(n, 'problem')} found." if n
             else f"{plural(report.images, 'image')} checked: no unreadable files, duplicates or tiny images.")
            + "".join(f"\n⚠ {w}" for w in report.warnings))
        self._fill(report, result.thumbnails)
        self._show_lists(bool(n))
        self._update_excluded()
        self._update_balance()

    # ---- class imbalance --------------------------------------------------------------------------
    def set_balance(self, remedy: str) -> None:
        """The remedy the form trains with now ("none" when none)."""
        self._balance = remedy
        self._update_balance()

    def _imbalance(self) -> dict | None:
        return getattr(self.result.report, "imbalance", None) if self.result is not None else None

    def _request_balance(self) -> None:
        if (found := self._imbalance()) is not None:
            self.balance_requested.emit(found["remedy"])

    def _update_balance(self) -> None:
        found = self._imbalance()
        self.balance_button.setVisible(found is not None)
        if found is None:
            return
        remedy = found["remedy"].replace("-", " ")
        chosen = self._balance != "none"
        self.balance_button.setEnabled(not chosen)
        self.balance_button.setText(f"Balanced in training ({self._balance.replace('-', ' ')})" if chosen
                                    else f"Balance the classes ({remedy})")
        self.balance_button.setToolTip(
            f"'{found['largest']}' has {found['ratio']:g}x the training images of '{found['smallest']}'. The "
            f"{remedy} remedy makes the smaller classes count as much in training (the Balance classes setting); "
            "adding images of the smaller classes helps more.")

    def _show_lists(self, shown: bool) -> None:
        for w in (self.tree, self.suggest_button, self.include_button, self.excluded_label):
            w.setVisible(shown)

    def _fill(self, report, thumbs: dict) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        sections = [
            ("Unreadable", [[(u["path"], str(u["reason"]))] for u in report.unreadable]),
            ("Exact duplicates", [[(p, "same bytes") for p in g] for g in report.exact_duplicates]),
            ("Near-duplicates", [[(p, "looks the same") for p in g] for g in report.near_duplicates]),
            ("In both training and validation",
             [[(p, "training") for p in leak["train"]] + [(p, "validation") for p in leak["held_out"]]
              for leak in report.leakage]),
            ("Much smaller than the model's input",
             [[(s["path"], f"{s['size'][0]}×{s['size'][1]} px")] for s in report.small_images]),
        ]
        for title, groups in sections:
            if not groups:
                continue
            files = sum(len(g) for g in groups)
            grouped = any(len(g) > 1 for g in groups)
            head = QTreeWidgetItem([f"{title}: " + (plural(len(groups), 'group') if grouped
                                                     else plural(files, 'file'))])
            self.tree.addTopLevelItem(head)
            for i, group in enumerate(groups):
                parent = head
                if grouped:
                    parent = QTreeWidgetItem([f"{plural(len(group), 'copy', 'copies')}"])
                    head.addChild(parent)
                for path, detail in group:
                    parent.addChild(self._file_item(path, detail, thumbs.get(path)))
                if grouped and i < 5:
                    parent.setExpanded(True)
            head.setExpanded(True)
        self.tree.blockSignals(False)

    def _file_item(self, path: str, detail: str, thumb) -> QTreeWidgetItem:
        item = QTreeWidgetItem([f"{Path(path).parent.name}/{Path(path).name} · {detail}"])
        item.setToolTip(0, f"{path}\nTicked: left out of the training run (the file stays in your folder).")
        item.setData(0, PATH_ROLE, path)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if path in self.excluded else Qt.CheckState.Unchecked)
        if thumb is not None:
            item.setIcon(0, QIcon(QPixmap.fromImage(thumb)))
        return item

    def file_items(self) -> list[QTreeWidgetItem]:
        out, stack = [], [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            if item.data(0, PATH_ROLE):
                out.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return out

    # ---- exclusions -------------------------------------------------------------------------------
    def _item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        path = item.data(0, PATH_ROLE)
        if not path:
            return
        if item.checkState(0) == Qt.CheckState.Checked:
            self.excluded.add(path)
        else:
            self.excluded.discard(path)
        self._update_excluded()

    def set_excluded(self, paths) -> None:
        self.excluded = set(paths)
        self._update_excluded()

    def exclude_suggested(self) -> None:
        if self.result is not None:
            self.set_excluded(self.excluded | set(self.result.report.exclusions()))

    def include_all(self) -> None:
        self.set_excluded(set())

    def excluded_paths(self, folder: str | None) -> list[str]:
        """The files to leave out of a run on `folder` (absolute paths): ticked in the health list or excluded in
        the label list; none for another folder."""
        if self.folder is None or folder is None or Path(folder).expanduser() != Path(self.folder).expanduser():
            return []
        ticked = self.excluded if self.result is not None and self.result.folder == self.folder else set()
        return sorted({str(Path(p).expanduser().absolute()) for p in ticked | self._label_excluded()})

    def _label_excluded(self) -> set[str]:
        return (self._outside[1] - set(self.labels.relabel)) | self.labels.excluded

    def _update_excluded(self) -> None:
        self.tree.blockSignals(True)
        for item in self.file_items():  # one file can be listed twice (a duplicate across the split)
            wanted = Qt.CheckState.Checked if item.data(0, PATH_ROLE) in self.excluded else Qt.CheckState.Unchecked
            if item.checkState(0) != wanted:
                item.setCheckState(0, wanted)
        self.tree.blockSignals(False)
        n = len(self.excluded | self._label_excluded())
        text = (f"{plural(n, 'file')} will be left out of the training run; your folder is not changed." if n
                else "Tick a file to leave it out of the training run (your folder is not changed).")
        relabelled = len(self.relabel_map(self.folder))
        if relabelled:
            text += (f"\n{plural(relabelled, 'file')} will be trained as the class "
                     f"{'it looks' if relabelled == 1 else 'they look'} like; your folder is not changed.")
        images = self.result.report.images if self.result is not None else 0
        if images and n > MANY_EXCLUDED * images:
            text += (f"\n⚠ That is {n / images:.0%} of the images: look through the near-duplicate groups before "
                     "training (images that are merely alike are grouped too).")
        self.excluded_label.setText(text)
        self.excluded_changed.emit(n)
