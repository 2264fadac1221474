"""A small QThread bridge: run a plain function in its own thread and hear about it through signals.

    task = Task(fn, *args, name="predict")
    task.event.connect(...)    # whatever fn reports with report(value); throttling is fn's job
    task.succeeded.connect(...) # fn's return value
    task.failed.connect(...)    # a message for the user (never a traceback)
    task.start(); ... task.cancel()   # sets the stop flag that fn checks

fn is called as fn(report, stop, *args): `report(value)` emits `event`, `stop.is_set()` says whether
the user cancelled. Every started task is tracked until its thread has finished, so shutdown and the
tests can wait for all of them (running_tasks(), wait_for_all()).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QThread, Signal

log = logging.getLogger(__name__)
_live: set[Task] = set()


class Task(QThread):
    event = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "task", parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self.fn, self.args = fn, args
        self.stop = threading.Event()
        self.finished.connect(self._forget)

    # runs in the worker thread
    def run(self) -> None:
        from resnet_gui.core.errors import ResnetGuiError

        try:
            value = self.fn(self.event.emit, self.stop, *self.args)
        except ResnetGuiError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("The computer ran out of memory.")
        except OSError as exc:
            self.failed.emit(f"A file operation failed: {exc.strerror or exc} {getattr(exc, 'filename', '') or ''}".strip())
        except Exception as exc:  # noqa: BLE001 - shown as a message; the log keeps the traceback
            log.exception("task %s failed", self.objectName())
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(value)

    def start(self, *args, **kwargs) -> None:
        _live.add(self)
        super().start(*args, **kwargs)

    def cancel(self) -> None:
        self.stop.set()

    def _forget(self) -> None:
        # `finished` is emitted just before the thread really ends: wait (microseconds) so that dropping
        # the last reference can never destroy a QThread that is still running
        self.wait()
        _live.discard(self)


def running_tasks() -> list[Task]:
    return [t for t in list(_live) if t.isRunning() or not t.isFinished()]


def cancel_all() -> None:
    for task in list(_live):
        task.cancel()


def wait_for_all(timeout_ms: int = 30_000) -> bool:
    """Cancel and wait for every task (processing events so their last signals arrive)."""
    cancel_all()
    deadline = QDeadlineTimer(timeout_ms)
    while _live and not deadline.hasExpired():
        for task in list(_live):
            task.wait(QDeadlineTimer(50))
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, 0)
    return not _live
