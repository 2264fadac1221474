"""Run plain functions in worker threads and hear about them in the GUI thread; one task at a time per slot.

    task = Task(fn, *args, name="predict")  # fn(report, stop, *args) runs in its own QThread
    task.progress / task.done / task.failed  # delivered in the GUI thread
    task.cancel()        # stop flag set, and nothing more is delivered (superqt's rule: no result after abort)
    task.request_stop()  # stop flag set, the function ends early and its result still arrives (training)

    slot = TaskSlot("scan")  # started, progress, done, failed, busy_changed: its current task's, only
    slot.start(fn, *args, on_progress=..., on_done=..., on_failed=...)  # cancels and disconnects the previous task

The job vocabulary: every job (a slot, the torchrun child, the TensorBoard launcher) says `started`,
`progress`, `done`, `failed` and `busy_changed`. A session's simple jobs are its slots
(`session.download.progress`); a job with more to it says the same words after its name (`training_done`,
`folder_progress`). A request from a widget to whoever owns it ends in `_requested`.

`fn` reports with report(value) and checks stop.is_set(); raising core.errors.Cancelled is a quiet end.
A failure crosses to the GUI thread as a failures.Failure (its message through core.errors.user_message,
the only translator, and its remedy as data), and is logged with its traceback. Every started task is
tracked until its thread has ended, so shutdown and the tests can wait for all of them (running_tasks(),
wait_for_all(), tracker().all_finished).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QObject, QThread, Signal

from .failures import Failure

log = logging.getLogger(__name__)
_live: set[Task] = set()


class TaskTracker(QObject):
    """Says when the last running task has ended (emitted in the GUI thread, after the thread is done)."""

    all_finished = Signal()


_tracker: TaskTracker | None = None


def tracker() -> TaskTracker:
    global _tracker
    if _tracker is None:
        _tracker = TaskTracker(QCoreApplication.instance())
    return _tracker


class Task(QThread):
    progress = Signal(object)   # what fn reported
    done = Signal(object)       # what fn returned
    failed = Signal(object)     # why fn raised: a Failure
    # emitted in the worker thread; relayed in the GUI thread unless the task was cancelled meanwhile
    _progress_in_worker = Signal(object)
    _done_in_worker = Signal(object)
    _failed_in_worker = Signal(object)

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "task", parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self.fn, self.args = fn, args
        self.stop = threading.Event()
        self._cancelled = False
        tracker()  # created in the GUI thread, before any task can end
        self._progress_in_worker.connect(self._relay_progress)
        self._done_in_worker.connect(self._relay_done)
        self._failed_in_worker.connect(self._relay_failed)
        self.finished.connect(self._forget)

    # ---- worker thread ----------------------------------------------------------------------------
    def run(self) -> None:
        from resnet_gui.core.errors import Cancelled, ResnetGuiError

        try:
            value = self.fn(self._report, self.stop, *self.args)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Failure; the log keeps the traceback
            failure = Failure.from_exception(exc)  # logs unexpected errors with their traceback
            if isinstance(exc, (ResnetGuiError, OSError, MemoryError)):
                log.warning("task %s failed: %s", self.objectName(), failure.message, exc_info=exc)
            self._failed_in_worker.emit(failure)
        else:
            self._done_in_worker.emit(value)

    def _report(self, value: Any) -> None:
        if not self._cancelled:
            self._progress_in_worker.emit(value)

    # ---- GUI thread -------------------------------------------------------------------------------
    def _relay_progress(self, value: Any) -> None:
        if not self._cancelled:
            self.progress.emit(value)

    def _relay_done(self, value: Any) -> None:
        if not self._cancelled:
            self.done.emit(value)

    def _relay_failed(self, failure: Failure) -> None:
        if not self._cancelled:
            self.failed.emit(failure)

    def start(self, *args, **kwargs) -> None:
        _live.add(self)
        super().start(*args, **kwargs)

    def cancel(self) -> None:
        """Ask the function to stop, and deliver nothing more (no progress, result or failure)."""
        self._cancelled = True
        self.stop.set()

    def request_stop(self) -> None:
        """Ask the function to stop early; what it returns still arrives."""
        self.stop.set()

    def cancelled(self) -> bool:
        return self._cancelled

    def _forget(self) -> None:
        # `finished` is emitted just before the thread really ends: wait (microseconds) so that dropping
        # the last reference can never destroy a QThread that is still running
        self.wait()
        _live.discard(self)
        if not _live:
            tracker().all_finished.emit()


class TaskSlot(QObject):
    """One task at a time: starting a task cancels the previous one and disconnects it, so its late
    progress, result or failure can never arrive. The slot's signals carry its current task's."""

    started = Signal()
    progress = Signal(object)
    done = Signal(object)
    failed = Signal(object)     # a Failure
    busy_changed = Signal(bool)

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self._task: Task | None = None
        self._connections: list = []

    def start(self, fn: Callable[..., Any], *args: Any, on_progress: Callable[[Any], None] | None = None,
              on_done: Callable[[Any], None] | None = None,
              on_failed: Callable[[Failure], None] | None = None) -> Task:
        """Run fn(report, stop, *args) in a new task; the on_* callbacks hear this task only."""
        self.cancel()
        task = Task(fn, *args, name=self.objectName())
        # relayed through bound methods (not connected to self.done.emit etc.): Qt drops these connections when
        # this slot is deleted (its tab closed) before the task ends, instead of emitting a deleted signal
        relays = ((task.progress, self._relay_progress, on_progress), (task.done, self._relay_done, on_done),
                  (task.failed, self._relay_failed, on_failed))
        for signal, relay, handler in relays:
            self._connections.append(signal.connect(relay))
            if handler is not None:
                self._connections.append(signal.connect(handler))
        task.finished.connect(self._task_finished)
        self._task = task
        task.start()
        self.started.emit()
        self.busy_changed.emit(True)
        return task

    def cancel(self) -> None:
        """Cancel and disconnect the current task (its thread ends on its own, unheard)."""
        task, self._task = self._task, None
        for connection in self._connections:
            QObject.disconnect(connection)
        self._connections = []
        if task is not None:
            task.cancel()
            self.busy_changed.emit(False)

    def request_stop(self) -> None:
        if self._task is not None:
            self._task.request_stop()

    def busy(self) -> bool:
        return self._task is not None

    def _relay_progress(self, value) -> None:
        self.progress.emit(value)

    def _relay_done(self, value) -> None:
        self.done.emit(value)

    def _relay_failed(self, failure) -> None:
        self.failed.emit(failure)

    def _task_finished(self) -> None:
        task = self.sender()
        if task is self._task:
            self._task = None
            self._connections = []
            self.busy_changed.emit(False)


def running_tasks() -> list[Task]:
    return [t for t in list(_live) if t.isRunning() or not t.isFinished()]


def request_stop_all() -> None:
    """Ask every task to end early (results still arrive: a stopped training run reports how far it got)."""
    for task in list(_live):
        task.request_stop()


def cancel_all() -> None:
    for task in list(_live):
        task.cancel()


def wait_for_all(timeout_ms: int = 30_000) -> bool:
    """Cancel and wait for every task (processing events so that their threads are forgotten)."""
    cancel_all()
    deadline = QDeadlineTimer(timeout_ms)
    while _live and not deadline.hasExpired():
        for task in list(_live):
            task.wait(QDeadlineTimer(50))
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, 0)
    return not _live
