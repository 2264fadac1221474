"""One progress/stop object handed down to downloads, data preparation, prediction and training loops.

    progress = Progress(on_progress=lambda what, done, total: ..., stop=threading.Event())
    progress.update("Downloading CIFAR-10", done, total)   # throttled to MAX_UPDATES_PER_S
    progress.check()                                       # raises Cancelled once stop is set

The computing code never knows who listens (Qt, a terminal, a test). `Throttle` is the one rate
limiter used for every kind of report, so nothing floods the GUI thread.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from .errors import Cancelled

MAX_UPDATES_PER_S = 20.0
ProgressFn = Callable[[str, int, int], None]  # (what, done, total; total 0 when unknown)


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


class Throttle:
    """True at most `rate` times per second (and always when forced)."""

    def __init__(self, rate: float = MAX_UPDATES_PER_S):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.last = float("-inf")

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            return True
        return False


class _NeverStop:
    """A stop flag that is never set: for callers that cannot stop the work."""

    @staticmethod
    def is_set() -> bool:
        return False


NEVER_STOP: StopFlag = _NeverStop()


class Progress:
    """Reports progress (throttled) and tells whether the user asked to stop."""

    def __init__(self, on_progress: ProgressFn | None = None, stop: StopFlag | None = None,
                 rate: float = MAX_UPDATES_PER_S):
        self.on_progress = on_progress
        self.stop = stop if stop is not None else NEVER_STOP
        self._throttle = Throttle(rate)

    def cancelled(self) -> bool:
        return bool(self.stop.is_set())

    def check(self) -> None:
        """Raise Cancelled when the user asked to stop."""
        if self.stop.is_set():
            raise Cancelled()

    def update(self, what: str, done: int, total: int = 0) -> None:
        """Report `done` of `total` (0: unknown); the last step (done >= total > 0) is always reported."""
        if self.on_progress is None:
            return
        if self._throttle.ready(force=bool(total) and done >= total):
            self.on_progress(what, int(done), int(total))


NO_PROGRESS = Progress()
