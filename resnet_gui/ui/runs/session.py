"""The Runs tab's work, without widgets: list the runs, compare the selected ones, free disk space (one run's
state, or every finished run's after a dry run). Core's runs module does the work in worker threads; the
results are its own plain objects (RunInfo, Comparison, Removed)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from ..common.workers import TaskSlot


@dataclass(frozen=True)
class Freed:
    """What an action removed: one Removed per run, and whether it was only a plan (a dry run)."""
    removed: tuple
    dry_run: bool = False
    errors: tuple[str, ...] = ()     # runs that could not be cleaned, one sentence each

    @property
    def bytes_freed(self) -> int:
        return sum(r.bytes_freed for r in self.removed)


# ---- worker functions ------------------------------------------------------------------------------
def list_task(report, stop) -> list:
    from resnet_gui.core.train.runs import list_run_infos

    return list_run_infos()


def compare_task(report, stop, names: list[str]):
    from resnet_gui.core.train.runs import compare

    return compare(names)


def remove_states_task(report, stop, names: list[str]) -> Freed:
    """Each run on its own: one that cannot be cleaned is named, and the others are still cleaned."""
    from resnet_gui.core.errors import ResnetGuiError, user_message
    from resnet_gui.core.train.runs import remove_run_state

    removed, errors = [], []
    for name in names:
        try:
            removed.append(remove_run_state(name))
        except (ResnetGuiError, OSError) as exc:
            errors.append(user_message(exc))
    if errors and not removed:
        raise ResnetGuiError(" ".join(errors))
    return Freed(tuple(removed), errors=tuple(errors))


def prune_task(report, stop, dry_run: bool) -> Freed:
    from resnet_gui.core.train.runs import prune

    return Freed(tuple(prune(finished=True, dry_run=dry_run)), dry_run=dry_run)


# ---- the session -----------------------------------------------------------------------------------
class RunsSession(QObject):
    """Jobs: `listing` and `comparison` are task slots; the removal (one state, or a clean-up after its dry run)
    says removal_done, removal_failed and busy_changed."""

    removal_done = Signal(object)    # Freed: a state removed, a clean-up done, or a clean-up planned (dry_run)
    removal_failed = Signal(object)  # a Failure
    busy_changed = Signal(bool)      # a removal is running

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ready = False
        self.runs: list = []
        self.listing = TaskSlot("runs-list", self)          # done: [core.train.runs.RunInfo], newest first
        self.comparison = TaskSlot("runs-compare", self)    # done: core.train.runs.Comparison
        self._change = TaskSlot("runs-change", self)
        self._plan: Freed | None = None
        self.listing.done.connect(self._listed)             # first: the runs are kept before others hear
        self._change.busy_changed.connect(self._change_busy)

    def set_ready(self) -> None:
        self.ready = True
        self.refresh()

    def refresh(self) -> None:
        if self.ready:
            self.listing.start(list_task)

    def _listed(self, runs: list) -> None:
        self.runs = runs

    def compare(self, names: list[str]) -> None:
        if self.ready:
            self.comparison.start(compare_task, list(names))

    def busy(self) -> bool:
        return self._change.busy()

    def remove_states(self, names: list[str]) -> bool:
        if not self.ready or self.busy():
            return False
        self._change.start(remove_states_task, list(names), on_done=self._changed, on_failed=self._change_failed)
        return True

    def plan_clean_up(self) -> bool:
        """A dry run: `removal_done` says what cleaning up would remove (nothing is removed)."""
        if not self.ready or self.busy():
            return False
        self._change.start(prune_task, True, on_done=self._planned, on_failed=self.removal_failed.emit)
        return True

    def _planned(self, plan: Freed) -> None:
        self._plan = plan  # told once the worker has ended, so that the clean-up it leads to can start at once

    def _change_busy(self, busy: bool) -> None:
        self.busy_changed.emit(busy)
        if not busy and self._plan is not None:
            plan, self._plan = self._plan, None
            self.removal_done.emit(plan)

    def clean_up(self) -> bool:
        if not self.ready or self.busy():
            return False
        self._change.start(prune_task, False, on_done=self._changed, on_failed=self._change_failed)
        return True

    def _changed(self, freed: Freed) -> None:
        self.removal_done.emit(freed)
        self.refresh()

    def _change_failed(self, failure) -> None:
        self.removal_failed.emit(failure)
        self.refresh()  # part of it may have been done
