"""The Train tab's work, without widgets: training runs (start, stop, resume, train more epochs), the
learning-rate finder, CIFAR-10 status and download, folder scans and the list of saved runs.

Each kind of work has its own task slot, so a folder scan never waits for (or is dropped by) a CIFAR-10
download, and a newer scan or status check supersedes an older one whose result can no longer arrive.
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
    running_changed = Signal(bool)
    event = Signal(object)             # core.train.events.* as the engine reports them
    ended = Signal(object)             # core.train.TrainResult
    failed = Signal(str)               # the run could not even start (a message)
    cifar_status = Signal(object)      # CifarStatus
    download_progress = Signal(str, int, int)   # (what, done, total)
    download_done = Signal(str)        # folder holding CIFAR-10
    download_failed = Signal(str)
    download_running = Signal(bool)
    scan_done = Signal(object)         # ScanResult
    scan_failed = Signal(str, str)     # (folder, message)
    runs_listed = Signal(list)         # [core.train.runs.RunInfo] with a state, newest first
    finding_changed = Signal(bool)     # the learning-rate finder runs
    lr_event = Signal(object)          # its Status and Prepare events
    lr_found = Signal(object)          # core.train.events.LrFound
    lr_failed = Signal(str)
    output = Signal(str)               # lines of a torchrun child that are not events

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ready = False
        self.runs: list = []          # RunInfo
        self.last_result = None
        self._train = TaskSlot("train", self)
        self._status = TaskSlot("cifar-status", self)
        self._download = TaskSlot("cifar-download", self)
        self._scan = TaskSlot("scan-folder", self)
        self._runs = TaskSlot("list-runs", self)
        self._lr = TaskSlot("find-lr", self)
        self.child = TorchrunRun(self, command=torchrun_command)
        self.lr_find_steps = LR_FIND_STEPS
        self._train.busy_changed.connect(self._train_busy)
        self._lr.busy_changed.connect(self.finding_changed.emit)
        self.child.running_changed.connect(self._train_busy)
        self.child.event.connect(self.event.emit)
        self.child.ended.connect(self._ended)
        self.child.failed.connect(self.failed.emit)
        self.child.output.connect(self.output.emit)
        self._download.busy_changed.connect(self.download_running.emit)

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
        return self._lr.busy()

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
        self._train.start(train_task, config, on_event=self.event.emit, on_done=self._ended, on_failed=self.failed.emit)
        return True

    def resume(self, run_name: str, gpus: int = 1, **overrides) -> bool:
        """Continue `run_name`; overrides such as epochs=N (train more), device, threads."""
        if not self._can_start():
            return False
        self.last_result = None
        if gpus > 1:
            return self.child.start(gpus, resume_options(run_name, overrides.get("epochs")))
        self._train.start(resume_task, run_name, {k: v for k, v in overrides.items() if v is not None},
                          on_event=self.event.emit, on_done=self._ended, on_failed=self.failed.emit)
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
        self._lr.start(lr_find_task, config, self.lr_find_steps, on_event=self._lr_event, on_done=self.lr_found.emit,
                       on_failed=self.lr_failed.emit)
        return True

    def _lr_event(self, ev) -> None:
        if getattr(ev, "kind", None) != "lr_found":  # the result arrives as lr_found
            self.lr_event.emit(ev)

    def stop_finding_lr(self) -> None:
        """Stop after the current step; finding_changed(False) once the worker has really ended."""
        self._lr.request_stop()

    def _ended(self, result) -> None:
        self.last_result = result
        self.ended.emit(result)

    def _train_busy(self, _busy: bool) -> None:
        busy = self.is_training()
        self.running_changed.emit(busy)
        if not busy:
            self.refresh_runs()

    # ---- data -------------------------------------------------------------------------------------
    def check_cifar(self, location: str | None) -> None:
        if self.ready:
            self._status.start(cifar_status_task, location, on_done=self.cifar_status.emit)

    def download_running_now(self) -> bool:
        return self._download.busy()

    def download_cifar(self, location: str | None) -> None:
        if self.ready:
            self._download.start(cifar_download_task, location, on_event=lambda p: self.download_progress.emit(*p),
                                 on_done=self.download_done.emit, on_failed=self.download_failed.emit)

    def cancel_download(self) -> None:
        self._download.cancel()

    def scan(self, folder: str, val_split: float, seed: int) -> None:
        if self.ready:
            self._scan.start(scan_task, folder, val_split, seed, on_done=self.scan_done.emit,
                             on_failed=lambda message: self.scan_failed.emit(folder, message))

    def refresh_runs(self) -> None:
        if self.ready:
            self._runs.start(runs_task, on_done=self._listed)

    def _listed(self, runs: list) -> None:
        self.runs = runs
        self.runs_listed.emit(runs)
