"""The registry as seen by the GUI: one shared object; tabs watch `changed` and never touch files."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from .common.failures import Failure
from .common.workers import Task, TaskSlot


@dataclass(frozen=True)
class Listing:
    root: str
    entries: list
    default: str | None
    demo_installed: str | None  # the demo model's name when this listing installed it
    demo_problem: Failure | None    # why the bundled demo could not be installed


def list_registry(install_demo: bool) -> Listing:
    """The registry's models and default (installing the bundled demo model first when install_demo)."""
    from resnet_gui.core.errors import ResnetGuiError
    from resnet_gui.core.models.demo import ensure_demo_model
    from resnet_gui.core.models.registry import Registry

    registry = Registry()
    installed = problem = None
    if install_demo:
        try:
            installed = ensure_demo_model(registry)
        except (ResnetGuiError, OSError) as exc:  # a damaged bundle is reported, the app goes on
            problem = Failure.from_exception(exc)
    return Listing(str(registry.root), registry.list(), registry.default_name(), installed, problem)


class FirstListing:
    """The session's first listing (the demo model installed if needed), made once and shared: the thread that
    opens the first model while the window is being built (predict.model_cache.prewarm) calls it, and the window's
    first refresh takes the same listing instead of listing again. Thread-safe: a second caller waits for the first;
    a listing that raised is made again by the next caller (the refresh), which reports it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._listing: Listing | None = None

    def __call__(self) -> Listing:
        with self._lock:
            if self._listing is None:
                self._listing = list_registry(install_demo=True)
            return self._listing


def list_task(report, stop, install_demo: bool, first: FirstListing | None = None) -> Listing:
    return first() if first is not None else list_registry(install_demo)


def operation_task(report, stop, op: str, args: tuple, kwargs: dict) -> Any:
    from resnet_gui.core.models.registry import Registry

    return getattr(Registry(), op)(*args, **kwargs)


class RegistryModel(QObject):
    """Lists the registry in a worker (a newer listing supersedes an older one); runs rename, remove,
    default and import in workers, then lists again."""

    changed = Signal()                 # entries, default_name and root are up to date
    failed = Signal(object)            # an operation failed: a Failure
    demo_installed = Signal(str)       # the demo model was installed (once per registry, ever)
    renamed = Signal(str, str)         # (old, new): a model was renamed here (before `changed` lists it)

    def __init__(self, parent=None, first: FirstListing | None = None):
        super().__init__(parent)
        self._first = first            # the session's first listing, shared with the model opened at start-up
        self._renames: dict[str, str] = {}  # old name -> new name, renamed in this session
        self.entries: list = []
        self.default_name: str | None = None
        self.root: str = ""
        self.loaded = False
        self._listing = TaskSlot("registry-list", self)
        self._install_demo = True      # only the first listing of a session may install it

    def refresh(self) -> None:
        """List again in the background; an older listing still running is cancelled."""
        first, self._first = self._first, None  # taken once: later listings see what changed since
        self._listing.start(list_task, self._install_demo, first if self._install_demo else None,
                            on_done=self._listed, on_failed=self.failed.emit)

    def _listed(self, listing: Listing) -> None:
        self._install_demo = False
        self.entries = listing.entries
        self.default_name = listing.default
        self.root = listing.root
        self.loaded = True
        self.changed.emit()
        if listing.demo_installed:
            self.demo_installed.emit(listing.demo_installed)
        if listing.demo_problem:
            self.failed.emit(listing.demo_problem)

    def _renamed(self, old: str, new: str) -> None:
        self._renames[old] = new
        self.renamed.emit(old, new)

    def current_name(self, name: str | None) -> str | None:
        """What model `name` is called now (renamed here, maybe more than once), or `name` itself."""
        seen = set()
        while name in self._renames and name not in seen:
            seen.add(name)
            name = self._renames[name]
        return name

    def run_models(self) -> dict[str, str]:
        """{run name: model name} of the models a training run saved (read from the model, so a rename follows)."""
        return {e.meta["notes"]["run_name"]: e.name for e in self.working_entries()
                if isinstance((e.meta or {}).get("notes"), dict) and isinstance(e.meta["notes"].get("run_name"), str)}

    def working_entries(self) -> list:
        return [e for e in self.entries if not e.broken]

    def entry(self, name: str):
        return next((e for e in self.entries if e.name == name), None)

    def run(self, op: str, *args, on_done: Callable[[Any], None] | None = None, **kwargs) -> Task:
        """Registry.<op>(*args, **kwargs) in a worker, then list again. Operations are the user's own
        actions: none supersedes another."""
        task = Task(operation_task, op, args, kwargs, name=f"registry-{op}")
        if op == "rename":
            task.done.connect(lambda entry, old=args[0]: self._renamed(old, entry.name))
        if on_done is not None:
            task.done.connect(on_done)
        task.failed.connect(self.failed.emit)
        task.finished.connect(self.refresh)
        task.start()
        return task
