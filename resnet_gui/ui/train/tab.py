"""Train tab: the form and data panel on the left; Start, Stop, Resume (and Train more epochs), Find learning
rate, the learning-rate finder's panel and the training monitor on the right. The work itself is a
TrainSession (a worker thread, or torchrun as a child process with several GPUs)."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.errors import Remedy
from resnet_gui.text import learning_rate, plural

from ..common.failures import Failure
from .data_health_panel import DataHealthPanel
from .data_panel import DataPanel
from .form import TrainForm
from .health_check import HealthCheck
from .monitor import TrainingMonitor
from .session import TrainSession

MORE_EPOCHS_DEFAULT = 5
PLOT_MODULES = ("resnet_gui.ui.train.live_plots", "resnet_gui.ui.train.lr_finder_panel")  # made on first use
FIND_LR_TIP = ("A short test that raises the learning rate step by step on this data and model and suggests one "
               "(nothing is saved)")


class TrainTab(QWidget):
    status_message = Signal(str)
    model_saved = Signal(str)        # registry name of a new or updated best model
    training_started = Signal(str)   # the run's name, once training has started
    training_busy_changed = Signal(bool)  # training runs or not
    evaluate_requested = Signal(str)  # a model to look at in the Evaluate tab (its validation split)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.session = TrainSession(self)
        self._requested_name: str | None = None
        self._renames: dict[str, str] = {}  # model names changed in the Models tab since they were shown here
        self._build()
        self._connect()
        self.data.load_settings()
        self.form.load_settings()

    # ---- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 12, 12, 12)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        outer.addWidget(splitter)
        self.form = TrainForm(self.settings)
        self.data = DataPanel(self.session, self.settings, self.form.split)
        self.health = DataHealthPanel()
        self.health.hide()
        self.form.insert_data_panel(self.data, self.health)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(400)
        self.form.setMinimumWidth(380)
        splitter.addWidget(scroll)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        rl.setSpacing(8)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QToolButton()
        self.resume_button.setText("Resume")
        self.resume_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.resume_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.resume_button.clicked.connect(self._resume_clicked)
        self.resume_menu = QMenu(self)
        self.resume_button.setMenu(self.resume_menu)
        self.find_lr_button = QPushButton("Find learning rate")
        self.find_lr_button.setToolTip(FIND_LR_TIP)
        self.find_lr_button.clicked.connect(self.find_lr)
        for b in (self.start_button, self.stop_button, self.resume_button, self.find_lr_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        rl.addLayout(buttons)
        self.monitor = TrainingMonitor()
        self._column = QSplitter(Qt.Orientation.Vertical)  # the learning-rate finder's panel goes above the monitor
        self._column.setChildrenCollapsible(False)
        self._column.addWidget(self.monitor)
        self._column.setStretchFactor(0, 3)
        self._lr_panel = None
        rl.addWidget(self._column, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 800])
        self._set_running(False)

    def _connect(self) -> None:
        s = self.session
        # the dataset health check follows the recipe, the scans and the settings it depends on
        self.health_check = HealthCheck(self.health, self.form, self.config, self.is_training, self)
        s.training_busy_changed.connect(self._training_busy_changed)
        s.training_progress.connect(self._training_progress)
        s.training_done.connect(self._training_done)
        s.training_failed.connect(lambda failure: self.monitor.on_failed(failure, self._fixes(failure.remedy)))
        s.listing_done.connect(self._runs_listed)
        self.form.mode_changed.connect(self._mode_changed)
        self.data.data_changed.connect(self._data_changed)
        s.folder_scan.done.connect(self._scanned)
        s.folder_scan.failed.connect(self.health_check.scan_failed)
        self.form.estimate_changed.connect(self._update_estimate)
        self.form.estimate_changed.connect(self._check_weights)
        self.form.weights_row.changed.connect(lambda: self._data_changed())
        self.data.data_changed.connect(self._update_estimate)
        s.training_output.connect(self.monitor.log_line)
        s.lr_finder.busy_changed.connect(self._lr_find_busy_changed)
        s.lr_finder.done.connect(self._lr_found)
        s.lr_finder.failed.connect(self._lr_failed)

    # ---- shortcuts the tests and scripts use --------------------------------------------------------
    @property
    def plots(self):
        return self.monitor.plots

    @property
    def lr_panel(self):
        """The learning-rate finder's panel, made (hidden, above the monitor) when first needed: its plot's
        pyqtgraph stays off the start-up path."""
        if self._lr_panel is None:
            from .lr_finder_panel import LrFinderPanel

            panel = self._lr_panel = LrFinderPanel()
            panel.hide()
            self._column.insertWidget(0, panel)
            self._column.setStretchFactor(0, 2)
            self.session.lr_finder.progress.connect(panel.on_event)
            panel.cancel_requested.connect(self.session.stop_finding_lr)
            panel.close_requested.connect(panel.hide)
            panel.lr_chosen.connect(self.set_learning_rate)
        return self._lr_panel

    @property
    def last_result(self):
        return self.session.last_result

    def mode(self) -> str:
        return self.form.mode()

    def set_mode(self, mode: str) -> None:
        """Choose a recipe: "cifar10", "finetune" or "scratch"."""
        self.form.set_mode(mode)

    def config(self):
        return self.form.config(self.data.location())

    def is_training(self) -> bool:
        return self.session.is_training()

    def child_running(self) -> bool:
        """A run on several GPUs: a torchrun child process (not a worker thread) is running."""
        return self.session.child_running()

    # ---- state ------------------------------------------------------------------------------------
    def set_ready(self, devices: list[tuple[str, str]], gpus: int = 0) -> None:
        """PyTorch has loaded: the devices it found, and how many CUDA GPUs (more than one: the GPUs choice)."""
        self.form.set_devices(devices)
        self.form.set_gpu_count(gpus)
        self.session.set_ready()
        self._set_running(False)
        self.data.refresh()
        self.form.estimate.refresh()
        self._check_weights()

    def _mode_changed(self, mode: str) -> None:
        self.data.set_mode(mode)
        if not self.is_training():
            self.monitor.reset()  # the last run's outcome, bar and log were about the other recipe
            self.status_message.emit("")  # and so was its "Training failed." in the status bar
        self._check_weights()

    def _check_weights(self) -> None:
        """Fine-tuning: does this computer have the architecture's ImageNet weights (checked in a worker)?"""
        if self.mode() == "finetune" and self.session.ready:
            self.form.weights_row.set_arch(self.form.arch_combo.currentData())

    def _data_changed(self) -> None:
        """Other data, or news about it: an error about the data before is stale, and Start follows problem()."""
        if not self.is_training():
            self.monitor.clear_error()
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        ready = self.session.ready
        finding = self.session.is_finding_lr()
        idle = ready and not running and not finding
        problem = self.data.problem()
        self.start_button.setEnabled(idle and problem is None)
        self.start_button.setToolTip(problem or ("" if ready else "PyTorch is still loading…"))
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(idle and bool(self.session.runs))
        self.find_lr_button.setEnabled(idle and problem is None)
        self.find_lr_button.setToolTip(FIND_LR_TIP if idle and problem is None else
                                       "Not while training runs" if running else problem or FIND_LR_TIP)
        self.form.setEnabled(not running and not finding)

    def _training_busy_changed(self, running: bool) -> None:
        self._set_running(running)
        self.training_busy_changed.emit(running)

    def save_settings(self) -> None:
        self.form.save_settings()
        self.data.save_settings()

    def _update_estimate(self) -> None:
        self.form.estimate.update_for(self.form.values(), *self.data.image_counts())

    def _scanned(self, scan) -> None:
        """A folder was scanned: the time estimate counts its images, and the health check checks them."""
        self._update_estimate()
        self.health_check.scanned(scan)

    # ---- runs -------------------------------------------------------------------------------------
    def _runs_listed(self, runs: list) -> None:
        self.resume_menu.clear()
        for run in runs:
            best = f", best {run.best_val_accuracy:.1%}" if run.best_val_accuracy is not None else ""
            if not run.finished:
                action = self.resume_menu.addAction(f"Resume “{run.name}” (epoch {run.epoch} of {run.epochs}{best})")
                action.triggered.connect(lambda _checked=False, n=run.name: self.resume(n))
            action = self.resume_menu.addAction(f"Train “{run.name}” for more epochs… ({plural(run.epoch, 'epoch')} "
                                                f"done{best})")
            action.triggered.connect(lambda _checked=False, n=run.name: self.ask_more_epochs(n))
        unfinished = [r for r in runs if not r.finished]
        self.resume_button.setToolTip(f"Continue “{unfinished[0].name}” from epoch {unfinished[0].epoch + 1}"
                                      if unfinished else "Train a finished run for more epochs")
        self._set_running(self.is_training())

    def _resume_clicked(self) -> None:
        unfinished = [r for r in self.session.runs if not r.finished]
        if unfinished:
            self.resume(unfinished[0].name)
        else:
            self.resume_button.showMenu()

    def _run(self, name: str):
        return next((r for r in self.session.runs if r.name == name), None)

    def resume(self, run_name: str, more_epochs: int = 0, epochs_done: int | None = None) -> None:
        """Continue a saved run on the chosen device (or GPUs); with more_epochs, train that many epochs more.
        `epochs_done`: what the caller knows (the Runs tab) when this tab's list has not caught up yet."""
        run = self._run(run_name)
        done = run.epoch if run is not None else epochs_done
        if done is None:
            return
        device = self.form.device()
        gpus = self.form.gpus()
        epochs = done + more_epochs if more_epochs else None
        message = (f"Training {run_name} for {plural(more_epochs, 'more epoch')}…" if more_epochs
                   else f"Resuming {run_name}…")
        if not self._can_start():
            return
        self._requested_name = None
        self.monitor.begin(message)
        self.session.resume(run_name, gpus=gpus, epochs=epochs, device=device, threads=self.form.threads_for(device))
        self.status_message.emit(message)

    def ask_more_epochs(self, run_name: str, epochs_done: int | None = None) -> None:
        run = self._run(run_name)
        done = run.epoch if run is not None else epochs_done
        if done is None or not self._can_start():
            return
        more, ok = QInputDialog.getInt(self, "Train more epochs",
                                       f"“{run_name}” has trained {plural(done, 'epoch')}. How many more?",
                                       MORE_EPOCHS_DEFAULT, 1, 10_000)
        if ok:
            self.resume(run_name, more_epochs=more, epochs_done=done)

    # ---- training ---------------------------------------------------------------------------------
    def start(self) -> None:
        from resnet_gui.core.errors import ResnetGuiError

        if self._data_problem():
            return
        cfg = self.config()
        try:
            cfg.validate()
        except ResnetGuiError as exc:
            failure = Failure.from_exception(exc)
            self.monitor.say(failure.message, "error", self._fixes(failure.remedy))
            return
        if not self._can_start():
            return
        self.save_settings()
        self.settings.save()
        self._requested_name = cfg.name
        self.monitor.begin(f"Training {cfg.arch}…")
        config = cfg.to_dict()
        gpus = self.form.gpus()
        for line in self.health_check.run_choices(cfg, config):
            self.monitor.log_line(line)
        if gpus > 1:
            self.monitor.log_line(f"Starting {gpus} training processes with torchrun, one per GPU.")
        self.session.start(config, gpus=gpus)
        self.form.clear_name()
        self.status_message.emit(f"Training {cfg.arch}…")

    def _data_problem(self) -> bool:
        """Say what is known to be wrong with the data, with its fix; True if there is something."""
        problem, busy = self.data.problem(), self.session.download.busy()
        if problem is not None:
            fixes = [] if busy else self._fixes(Remedy("cifar10" if self.mode() == "cifar10" else "data_folder"))
            self.monitor.say(problem, "info" if busy else "error", fixes)
        return problem is not None

    def _can_start(self) -> bool:
        if self.is_training() or self.session.is_finding_lr():
            return False
        if not self.session.ready:
            self.monitor.say("PyTorch is still loading; start again in a moment.", "info")
            return False
        return True

    def stop(self) -> None:
        if self.is_training():
            self.session.stop()
            self.stop_button.setEnabled(False)
            self.monitor.stopping()
            self.status_message.emit("Stopping training after the current batch…")

    def _training_progress(self, ev) -> None:
        self.monitor.on_event(ev)
        if ev.kind == "started":
            self.training_started.emit(ev.run_name)
        if ev.kind == "started" and self._requested_name and ev.run_name != self._requested_name:
            self.monitor.add_warning(f"A model named “{self._requested_name}” already exists, so this run is saved "
                                     f"as “{ev.run_name}”")
        elif ev.kind == "checkpoint" and ev.which == "best":
            self.model_saved.emit(ev.name)

    def _training_done(self, result) -> None:
        actions = self._fixes(result.remedy) if result.status != "finished" else []
        if result.status == "finished" and result.best_name and getattr(result, "warnings", None):
            best = result.best_name
            actions = [("Evaluate it…", lambda: self.evaluate_requested.emit(self._renames.get(best, best)))]
        self.monitor.on_result(result, actions)
        self.status_message.emit(f"Training {result.status}.")
        self.form.estimate.refresh()  # this run's speed estimates the next
        if result.best_name:
            self.model_saved.emit(result.best_name)

    def model_renamed(self, old: str, new: str) -> None:
        """A model was renamed in the Models tab: the outcome on screen and its buttons say the new name."""
        self._renames = {k: (new if v == old else v) for k, v in self._renames.items()} | {old: new}
        self.monitor.rename_model(old, new)
        result = self.session.last_result
        if result is not None and result.best_name == old:
            self.session.last_result = replace(result, best_name=new)

    # ---- learning-rate finder ---------------------------------------------------------------------
    def find_lr(self) -> None:
        """The learning-rate range test on the form's data and model; never while training."""
        from resnet_gui.core.errors import ResnetGuiError

        if self.is_training() or self.session.is_finding_lr():
            return
        if not self.session.ready:
            self.monitor.say("PyTorch is still loading; try again in a moment.", "info")
            return
        if self._data_problem():
            return
        cfg = self.config()
        try:
            cfg.validate()
        except ResnetGuiError as exc:
            self.lr_panel.show()
            self.lr_panel.failed(Failure.from_exception(exc))
            return
        config = cfg.to_dict()
        self.health_check.run_choices(cfg, config)
        self.lr_panel.begin(self.session.lr_find_steps, cfg.lr)
        if self.session.find_lr(config):
            self.status_message.emit("Finding a learning rate…")

    def _lr_find_busy_changed(self, finding: bool) -> None:
        if not finding and self.lr_panel.running():
            self.lr_panel.cancelled()  # ended without a result or a failure: it was cancelled
            self.status_message.emit("Learning-rate test cancelled; the learning rate was not changed.")
        self._set_running(self.is_training())

    def _lr_failed(self, failure: Failure) -> None:
        self.lr_panel.failed(failure)
        self.status_message.emit("The learning-rate test failed; the Train tab says why.")

    def _lr_found(self, found) -> None:
        self.lr_panel.show_result(found)
        if found.lr is None:
            self.status_message.emit("No learning rate suggested: the loss shows no clear descent.")
        else:
            self.status_message.emit(f"Suggested learning rate: {learning_rate(found.lr)}. Click the curve to choose a "
                                     "rate.")

    def set_learning_rate(self, lr: float) -> None:
        if self.is_training():
            return
        self.status_message.emit(f"Learning rate set to {learning_rate(self.form.set_learning_rate(lr))}.")

    def set_batch_size(self, size: int) -> None:
        if self.is_training():
            return
        self.status_message.emit(f"Batch size set to {self.form.set_batch_size(size)}.")

    def _fixes(self, remedy) -> list:
        """Buttons that do what a failure's remedy (core.errors.Remedy) says."""
        kind, value = (remedy.kind, remedy.value) if remedy is not None else (None, None)
        if kind == "weights_file":
            return [("Download ImageNet weights", self.form.weights_row.download),
                    ("Locate a file…", self.form.choose_weights)]
        if kind in ("cifar10", "cifar10_location"):
            return [("Locate…", self.data.browse_cifar)] + (
                [("Download CIFAR-10", self.data.download_cifar)] if kind == "cifar10" else [])
        if kind == "data_folder":
            return [("Choose…", self.data.browse_folder)]
        if kind == "lr":
            return [(f"Use learning rate {learning_rate(value)}", lambda: self.set_learning_rate(value))]
        if kind == "batch_size":
            return [(f"Use batch size {value}", lambda: self.set_batch_size(value))]
        if kind == "resume":
            return [("Resume", lambda: self.resume(value))]
        return []
