"""The registry as seen by the GUI: one shared object; tabs watch `changed` and never touch files."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from .tasks import Task


def _list(report, stop, seed_demo: bool) -> dict[str, Any]:
    from resnet_gui.core.demo import ensure_demo_model
    from resnet_gui.core.registry import Registry

    registry = Registry()
    seeded = None
    if seed_demo:
        try:
            seeded = ensure_demo_model(registry)
        except Exception as exc:  # noqa: BLE001 - a damaged bundle is reported, the app goes on
            report({"warning": str(exc)})
    return {"root": str(registry.root), "entries": registry.list(), "default": registry.default_name(),
            "seeded": seeded}


def _operation(report, stop, op: str, args: tuple, kwargs: dict) -> Any:
    from resnet_gui.core.registry import Registry

    return getattr(Registry(), op)(*args, **kwargs)


class RegistryModel(QObject):
    """Lists the registry in a worker; runs rename/remove/default/import in workers, then re-lists."""

    changed = Signal()            # entries, default_name and root are up to date
    error = Signal(str)           # an operation failed (message for the user)
    operation_done = Signal(str, object)  # (operation, result)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list = []
        self.default_name: str | None = None
        self.root: str = ""
        self.loaded = False
        self.seeded: str | None = None
        self._listing: Task | None = None
        self._again = False
        self._seed_demo = True

    def refresh(self) -> None:
        """Re-list in the background (coalesces requests made while a listing runs)."""
        if self._listing is not None:
            self._again = True
            return
        task = Task(_list, self._seed_demo, name="registry-list")
        self._seed_demo = False  # only on the first listing of a session
        task.succeeded.connect(self._listed)
        task.failed.connect(self.error)
        task.event.connect(lambda ev: self.error.emit(ev.get("warning", "")))
        task.finished.connect(self._listing_finished)
        self._listing = task
        task.start()

    def _listed(self, result: dict) -> None:
        self.entries = result["entries"]
        self.default_name = result["default"]
        self.root = result["root"]
        self.seeded = result.get("seeded") or self.seeded
        self.loaded = True
        self.changed.emit()

    def _listing_finished(self) -> None:
        self._listing = None
        if self._again:
            self._again = False
            self.refresh()

    def working_entries(self) -> list:
        return [e for e in self.entries if not e.broken]

    def entry(self, name: str):
        return next((e for e in self.entries if e.name == name), None)

    def run(self, op: str, *args, on_done: Callable[[Any], None] | None = None, **kwargs) -> Task:
        """Registry.<op>(*args, **kwargs) in a worker, then refresh."""
        task = Task(_operation, op, args, kwargs, name=f"registry-{op}")

        def done(result):
            self.operation_done.emit(op, result)
            if on_done is not None:
                on_done(result)

        task.succeeded.connect(done)
        task.failed.connect(self.error)
        task.finished.connect(self.refresh)
        task.start()
        return task
