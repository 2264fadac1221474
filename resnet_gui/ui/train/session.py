"""The Train tab's work, without widgets: training runs (start, stop, resume, train more epochs), the
learning-rate finder, CIFAR-10 status and download, folder scans and the list of saved runs.

Each kind of work has its own task slot, so a folder scan never waits for (or is dropped by) a CIFAR-10
download, and a newer scan or status check supersedes an older one whose result can no longer arrive.
The simple jobs are the slots themselves (`session.download.progress`, `session.folder_scan.done`, …);
training, which is a worker thread or a torchrun child, says `training_progress`, `training_done`, ….
Results are typed values; training events are core.train.events objects, passed on as they come.

With several GPUs a run is a torchrun child process (torchrun.TorchrunRun, handed the settings as a file)
instead of a worker thread; its events and result arrive through the same signals. The learning-rate
finder never runs at the same time as training: each refuses to start while the other runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..common.workers import TaskSlot
from .torchrun import TorchrunRun, resume_options, torchrun_command

LR_FIND_STEPS = 100


@dataclass(frozen=True)
class CifarStatus:
    root: str                  # where it was looked for first
    found: bool                # an extracted copy exists
    tarball: str | None        # an archive to extract at training time


@dataclass(frozen=True)
class ScanResult:
    folder: str
    classes: tuple[str, ...]
    train: dict                # class -> readable training images
    val: dict                  # class -> readable validation images
    layout: str                # "split" (train/ and val/) or "single" (split per class)
    warnings: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()  # files with an image name that are not readable images


# ---- worker functions ------------------------------------------------------------------------------
def train_task(report, stop, config: dict):
    from resnet_gui.core.train import TrainConfig, train

    return train(TrainConfig.from_dict(config), report, stop)


def resume_task(report, stop, run_name: str, overrides: dict):
    """Continue a saved run (with more epochs when `overrides` says so)."""
    from resnet_gui.core.train import resume_config, train

    config, path = resume_config(run_name, **overrides)
    return train(config, report, stop, resume=path)


def lr_find_task(report, stop, config: dict, steps: int):
    from resnet_gui.core.train import TrainConfig
    from resnet_gui.core.train.lr_find import find_lr

    return find_lr(TrainConfig.from_dict(config), report, stop, steps=steps)


def cifar_status_task(report, stop, location: str | None) -> CifarStatus:
    from resnet_gui.core.data.cifar import default_cifar_root, find_cifar10

    root = Path(location).expanduser() if location else default_cifar_root()
    base, tarball = find_cifar10(location or None)
    return CifarStatus(str(root), base is not None, str(tarball) if tarball else None)


def cifar_download_task(report, stop, location: str | None) -> str:
    from resnet_gui.core.data.cifar import locate_cifar10
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report((what, done, total)), stop)
    return str(locate_cifar10(location or None, download_if_missing=True, progress=progress))


def _readable_image(path: Path) -> bool:
    """Pillow recognises the file as an image (header only; cheap)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size[0] > 0 and image.size[1] > 0
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return False


def scan_task(report, stop, folder: str, val_split: float, seed: int) -> ScanResult:
    from resnet_gui.core.data.folders import scan_folder
    from resnet_gui.core.errors import Cancelled

    split = scan_folder(folder, val_split=val_split, seed=seed)
    readable: tuple[list, list] = ([], [])
    unreadable: list[str] = []
    for items, good in zip((split.train, split.val), readable):
        for path, label in items:
            if stop.is_set():
                raise Cancelled()
            if _readable_image(path):
                good.append((path, label))
            else:
                unreadable.append(str(path))
    return ScanResult(folder, tuple(split.class_names), split.counts(readable[0]), split.counts(readable[1]),
                      split.layout, tuple(split.warnings), tuple(unreadable))


def runs_task(report, stop) -> list:
    """The runs that can be resumed or trained for more epochs: readable, with their state (core RunInfo, as
    the Runs tab lists them)."""
    from resnet_gui.core.train.runs import list_run_infos

    return [r for r in list_run_infos() if r.has_state and r.error is None]


# ---- the session -----------------------------------------------------------------------------------
class TrainSession(QObject):
    training_progress = Signal(object)       # core.train.events.* as the engine reports them
    training_done = Signal(object)           # core.train.TrainResult
    training_failed = Signal(object)         # the run could not even start (a Failure)
    training_busy_changed = Signal(bool)
    training_output = Signal(str)            # lines of a torchrun child that are not events
    listing_done = Signal(list)              # [core.train.runs.RunInfo] with a state, newest first

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ready = False
        self.runs: list = []          # RunInfo
        self.last_result = None
        self._train = TaskSlot("train", self)
        self._runs = TaskSlot("list-runs", self)
        self.lr_finder = TaskSlot("find-lr", self)           # progress: Status, Prepare (…) events; done: LrFound
        self.cifar_check = TaskSlot("cifar-status", self)    # done: CifarStatus
        self.download = TaskSlot("cifar-download", self)     # progress: (what, done, total); done: the folder
        self.folder_scan = TaskSlot("scan-folder", self)     # done: ScanResult
        self.child = TorchrunRun(self, command=torchrun_command)
        self.lr_find_steps = LR_FIND_STEPS
        self._train.busy_changed.connect(self._train_busy)
        self.child.busy_changed.connect(self._train_busy)
        self.child.progress.connect(self.training_progress.emit)
        self.child.done.connect(self._training_done)
        self.child.failed.connect(self.training_failed.emit)
        self.child.output.connect(self.training_output.emit)

    def set_ready(self) -> None:
        self.ready = True
        self.refresh_runs()

    # ---- training ---------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self._train.busy() or self.child.running()

    def child_running(self) -> bool:
        """A several-GPU run: a child process, not a worker thread."""
        return self.child.running()

    def is_finding_lr(self) -> bool:
        return self.lr_finder.busy()

    def _can_start(self) -> bool:
        return self.ready and not self.is_training() and not self.is_finding_lr()

    def start(self, config: dict, gpus: int = 1) -> bool:
        """Train `config` (TrainConfig fields); with gpus > 1, under torchrun with one process per GPU."""
        if not self._can_start():
            return False
        self.last_result = None
        if gpus > 1:
            from resnet_gui.core.train.config import TrainConfig

            return self.child.start(gpus, config=TrainConfig.from_dict(config))
        self._train.start(train_task, config, on_progress=self.training_progress.emit, on_done=self._training_done,
                          on_failed=self.training_failed.emit)
        return True

    def resume(self, run_name: str, gpus: int = 1, **overrides) -> bool:
        """Continue `run_name`; overrides such as epochs=N (train more), device, threads."""
        if not self._can_start():
            return False
        self.last_result = None
        if gpus > 1:
            return self.child.start(gpus, resume_options(run_name, overrides.get("epochs")))
        self._train.start(resume_task, run_name, {k: v for k, v in overrides.items() if v is not None},
                          on_progress=self.training_progress.emit, on_done=self._training_done,
                          on_failed=self.training_failed.emit)
        return True

    def stop(self) -> None:
        """Stop after the current batch; the run's result (cancelled, with what was saved) still arrives."""
        self._train.request_stop()
        self.child.stop()

    # ---- learning-rate finder ---------------------------------------------------------------------
    def find_lr(self, config: dict) -> bool:
        """The learning-rate range test on `config`'s data and model (nothing is saved)."""
        if not self._can_start():
            return False
        self.lr_finder.start(lr_find_task, config, self.lr_find_steps)
        return True

    def stop_finding_lr(self) -> None:
        """Stop after the current step; lr_finder.busy_changed(False) once the worker has really ended."""
        self.lr_finder.request_stop()

    def _training_done(self, result) -> None:
        self.last_result = result
        self.training_done.emit(result)

    def _train_busy(self, _busy: bool) -> None:
        busy = self.is_training()
        self.training_busy_changed.emit(busy)
        if not busy:
            self.refresh_runs()

    # ---- data -------------------------------------------------------------------------------------
    def check_cifar(self, location: str | None) -> None:
        if self.ready:
            self.cifar_check.start(cifar_status_task, location)

    def download_cifar(self, location: str | None) -> None:
        if self.ready:
            self.download.start(cifar_download_task, location)

    def scan(self, folder: str, val_split: float, seed: int) -> None:
        if self.ready:
            self.folder_scan.start(scan_task, folder, val_split, seed)

    def refresh_runs(self) -> None:
        if self.ready:
            self._runs.start(runs_task, on_done=self._listed)

    def _listed(self, runs: list) -> None:
        self.runs = runs
        self.listing_done.emit(runs)
