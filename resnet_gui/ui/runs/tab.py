"""The Runs tab: every training run (finished, stopped, failed) with its dataset, architecture, key settings,
epochs, best validation accuracy, duration and disk use. Select two or more to overlay their curves and see
their configurations side by side, differences first and highlighted.

Actions: Resume, Train more epochs…, Open model (Predict, Models, Evaluate), Open in TensorBoard, Delete state…
(frees the resumable state; the model stays) and Clean up finished runs… (a dry run first, then a confirmation).
The work is a RunsSession; TensorBoard runs as a child process (TensorBoardLauncher)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.text import decimal_size, plural

from ..common.flow import FlowLayout
from ..common.lazy import LazyPage
from ..common.widgets import Banner, ElidedLabel
from .config_diff import ConfigDiff
from .session import Freed, RunsSession
from .table import RunsTable
from .tensorboard import NOT_INSTALLED, TensorBoardLauncher

COMPARABLE = ("finished", "unfinished")
PLOT_MODULES = ("resnet_gui.ui.runs.curves",)


def _run_curves():
    from .curves import RunCurves

    return RunCurves()


class RunsTab(QWidget):
    status_message = Signal(str)
    resume_requested = Signal(str)        # run name
    more_epochs_requested = Signal(str)   # run name
    use_model_requested = Signal(str)     # registry name: open it in Predict
    show_model_requested = Signal(str)    # registry name: select it in the Models tab
    evaluate_requested = Signal(str)      # registry name: the Evaluate tab, on its validation split

    def __init__(self, parent=None):
        super().__init__(parent)
        self._model_names: dict[str, str] = {}  # run -> its model's name in the registry now
        self.session = RunsSession(self)
        self.tensorboard = TensorBoardLauncher(self)
        self.training = False
        self.current_run: str | None = None
        self._build()
        self._connect()
        self._update_buttons()

    # ---- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        self.banner = Banner()
        layout.addWidget(self.banner)
        row = FlowLayout()  # wraps at 1024 px instead of widening the window
        self.resume_button = self._button("Resume", self._resume, "Continue the selected stopped run where it ended")
        self.more_button = self._button("Train more epochs…", self._more,
                                        "Continue the selected run for more epochs than it was set up for")
        self.open_button = QToolButton()
        self.open_button.setText("Open model")
        self.open_button.setToolTip("Use the run's best model in the Predict tab")
        self.open_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.open_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.open_button.clicked.connect(lambda: self._open_model(self.use_model_requested))
        menu = QMenu(self)
        menu.addAction("Use in Predict").triggered.connect(lambda: self._open_model(self.use_model_requested))
        menu.addAction("Show in the Models tab").triggered.connect(lambda: self._open_model(self.show_model_requested))
        menu.addAction("Evaluate on its validation images").triggered.connect(
            lambda: self._open_model(self.evaluate_requested))
        self.open_button.setMenu(menu)
        self.tensorboard_button = self._button("Open in TensorBoard", self.open_tensorboard,
                                               "Start TensorBoard on this computer for the selected runs (or the "
                                               "current one) and open it in the browser")
        self.delete_button = self._button("Delete state…", self.delete_states,
                                          "Free the disk space of the selected runs' resumable states; their models "
                                          "stay")
        self.clean_button = self._button("Clean up finished runs…", self.clean_up,
                                         "Delete the resumable states of every finished run (asks first)")
        self.refresh_button = self._button("Refresh", self.refresh)
        for w in (self.resume_button, self.more_button, self.open_button, self.tensorboard_button,
                  self.delete_button, self.clean_button):
            row.addWidget(w)
        row.addWidget(self.refresh_button)
        self.summary = ElidedLabel("Runs are listed once PyTorch has loaded…")
        self.summary.setMinimumWidth(120)
        row.addWidget(self.summary)
        layout.addLayout(row)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        self.table = RunsTable()
        self.table.setMinimumHeight(120)
        splitter.addWidget(self.table)
        below = QSplitter(Qt.Orientation.Horizontal)
        below.setChildrenCollapsible(False)
        self.curves_page = LazyPage(_run_curves)  # made when first shown: pyqtgraph stays off the start-up path
        self.curves_page.setMinimumWidth(420)
        self.diff = ConfigDiff()
        self.diff.setMinimumWidth(280)
        below.addWidget(self.curves_page)
        below.addWidget(self.diff)
        below.setStretchFactor(0, 3)
        below.setStretchFactor(1, 2)
        below.setSizes([600, 400])  # the plots' size hints would leave the settings only their minimum width
        splitter.addWidget(below)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout.addWidget(splitter, 1)

    def _button(self, text: str, slot, tip: str = "") -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        button.setToolTip(tip)
        return button

    def _connect(self) -> None:
        s = self.session
        s.listing.done.connect(self._listed)
        s.listing.failed.connect(lambda failure: self._say(failure.message, "error"))
        s.comparison.done.connect(self._compared)
        s.comparison.failed.connect(self._compare_failed)
        s.removal_done.connect(self._freed)
        s.removal_failed.connect(lambda failure: self._say(failure.message, "error"))
        s.busy_changed.connect(lambda _busy: self._update_buttons())
        self.table.selection_changed.connect(self._selected)
        tb = self.tensorboard
        tb.done.connect(lambda url: self._say(f"TensorBoard is open in your browser at {url}. It stops when the "
                                                "app closes.", "success"))
        tb.failed.connect(lambda failure: self._say(failure.message, "info" if failure.kind == NOT_INSTALLED
                                                    else "error"))
        tb.busy_changed.connect(self._tensorboard_busy)

    @property
    def curves(self):
        """The selected runs' curves (made on first use)."""
        return self.curves_page.widget()

    # ---- state ------------------------------------------------------------------------------------
    def set_ready(self) -> None:
        self.session.set_ready()

    def refresh(self) -> None:
        self.session.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()  # runs change on disk behind the app's back (the command line, another window)

    def set_training(self, running: bool) -> None:
        """Training started or ended in the Train tab: no resuming or deleting meanwhile; the list follows."""
        self.training = running
        if not running:
            self.refresh()
        self._update_buttons()

    def set_current_run(self, name: str) -> None:
        self.current_run = name
        self.refresh()

    def set_model_names(self, names: dict[str, str]) -> None:
        """{run name: model name} as the registry has them now: a model renamed after its run is listed, opened
        and evaluated under its new name (the run's state still holds the name it was saved under)."""
        self._model_names = dict(names)
        if self.session.runs:
            self._listed(self.session.runs)

    def info(self, name: str):
        """The listed run called `name` (core.train.runs.RunInfo), or None."""
        return self.table.info(name)

    def selected(self) -> list[str]:
        return self.table.selected()

    def _infos(self) -> list:
        return [info for info in (self.table.info(n) for n in self.selected()) if info is not None]

    def _one(self):
        infos = self._infos()
        return infos[0] if len(infos) == 1 else None

    def _update_buttons(self) -> None:
        ready, infos, one = self.session.ready, self._infos(), self._one()
        idle = ready and not self.training
        changing = self.session.busy()
        self.resume_button.setEnabled(idle and one is not None and one.resumable)
        self.more_button.setEnabled(idle and one is not None and one.has_state and one.status in COMPARABLE)
        self.open_button.setEnabled(one is not None and bool(one.best_name))
        self.tensorboard_button.setEnabled(ready and not self.tensorboard.busy()
                                           and bool(infos or self.current_run or self.session.runs))
        self.delete_button.setEnabled(idle and not changing and any(self._deletable(i) for i in infos))
        self.clean_button.setEnabled(idle and not changing and any(i.status == "finished" and i.has_state
                                                                   for i in self.session.runs))
        self.refresh_button.setEnabled(ready)

    def _deletable(self, info) -> bool:
        return info.has_state and info.name != (self.current_run if self.training else None)

    def _say(self, text: str, kind: str = "info") -> None:
        self.banner.show_message(text, kind)
        self.status_message.emit(text)

    # ---- the list and the comparison --------------------------------------------------------------
    def _listed(self, runs: list) -> None:
        for run in runs:
            run.best_name = self._model_names.get(run.name, run.best_name)
        self.table.set_runs(runs)
        total = sum(r.disk_bytes for r in runs)
        states = sum(r.state_bytes for r in runs if r.has_state)
        self.summary.setText(f"{plural(len(runs), 'run')} · {decimal_size(total)} on disk, {decimal_size(states)} "
                             "of it resumable states" if runs else "No training runs yet: the Train tab starts one.")
        self._update_buttons()

    def _selected(self, names: list[str]) -> None:
        self._update_buttons()
        infos = self._infos()
        comparable = [i for i in infos if i.status in COMPARABLE]
        self.session.comparison.cancel()
        if not comparable:
            self.diff.clear()
            if infos:
                self.curves.clear("The selected run has no epochs to show"
                                  + (f": {infos[0].error}" if infos[0].error else "."))
            elif self.curves_page.made_widget() is not None:  # one never made shows what to select already
                self.curves.clear()
            return
        self.curves.set_runs({i.name: i.history for i in comparable})
        if len(comparable) == 1:
            info = comparable[0]
            self.diff.set_configs({info.name: info.config}, list(info.config), [])
        else:
            self.diff.say("Comparing…")
            self.session.compare([i.name for i in comparable])

    def _compared(self, comparison) -> None:
        self.diff.set_configs(comparison.configs, comparison.keys, comparison.differing)

    def _compare_failed(self, failure) -> None:
        self.diff.clear(failure.message)

    # ---- actions ----------------------------------------------------------------------------------
    def _resume(self) -> None:
        one = self._one()
        if one is not None and one.resumable and not self.training:
            self.resume_requested.emit(one.name)

    def _more(self) -> None:
        one = self._one()
        if one is not None and one.has_state and not self.training:
            self.more_epochs_requested.emit(one.name)

    def _open_model(self, signal) -> None:
        one = self._one()
        if one is not None and one.best_name:
            signal.emit(one.best_name)

    def open_tensorboard(self) -> None:
        names = self.selected() or ([self.current_run] if self.current_run else
                                    [r.name for r in self.session.runs[:1]])
        if names:
            self.banner.show_message(f"Starting TensorBoard for {', '.join(names)}…", "info")
            self.tensorboard.open(names)

    def _tensorboard_busy(self, busy: bool) -> None:
        self.tensorboard_button.setText("Starting TensorBoard…" if busy else "Open in TensorBoard")
        self._update_buttons()

    def delete_states(self) -> None:
        infos = [i for i in self._infos() if self._deletable(i)]
        if not infos or self.training:
            return
        size = sum(i.state_bytes for i in infos)
        which = (f"the training state of “{infos[0].name}”" if len(infos) == 1
                 else f"the training states of {plural(len(infos), 'run')} ({', '.join(i.name for i in infos)})")
        models = [i.best_name for i in infos if i.best_name]
        answer = QMessageBox.question(
            self, "Delete training state",
            f"Delete {which} and free {decimal_size(size)}?\n\n"
            + (f"The model{'s' if len(models) > 1 else ''} ({', '.join(models)}) stay{'' if len(models) > 1 else 's'}"
               " in the registry. " if models else "")
            + "The run stays listed and comparable, but it can no longer be resumed or trained for more epochs.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.session.remove_states([i.name for i in infos])

    def clean_up(self) -> None:
        if not self.training:
            self.session.plan_clean_up()

    def _freed(self, freed: Freed) -> None:
        if freed.dry_run:
            self._confirm_clean_up(freed)
            return
        names = ", ".join(r.name for r in freed.removed)
        text = (f"Freed {decimal_size(freed.bytes_freed)}: removed the training state of "
                f"{plural(len(freed.removed), 'run')} ({names}). Their models stay in the Models tab."
                if freed.removed else "Nothing was removed.")
        if freed.errors:
            text += "\n" + "\n".join(freed.errors)
        self._say(text, "warning" if freed.errors else "success")

    def _confirm_clean_up(self, plan: Freed) -> None:
        if not plan.removed:
            self._say("No finished run has a training state left to remove.", "info")
            return
        lines = "\n".join(f"• {r.name}: {decimal_size(r.bytes_freed)}" for r in plan.removed[:20])
        more = f"\n… and {plural(len(plan.removed) - 20, 'more run')}" if len(plan.removed) > 20 else ""
        answer = QMessageBox.question(
            self, "Clean up finished runs",
            f"Delete the training states of {plural(len(plan.removed), 'finished run')} and free "
            f"{decimal_size(plan.bytes_freed)}?\n\n{lines}{more}\n\nTheir models stay in the registry, and the runs "
            "stay listed and comparable; they can no longer be trained for more epochs. Stopped runs are kept.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.session.clean_up()

    def shutdown(self) -> None:
        """The window closes: stop TensorBoard."""
        self.tensorboard.stop()
