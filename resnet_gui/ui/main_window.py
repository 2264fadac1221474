"""The main window: Predict, Train, Runs, Evaluate and Models tabs, menus, status bar. Classifying is ready as
soon as the window shows (ONNX Runtime); PyTorch, for training, loads in the background where it is installed."""
from __future__ import annotations

import base64

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QSizePolicy, QTabWidget, QWidget

from resnet_gui import APP_NAME, __version__, edition

from .common import theme
from .common.lazy import preload_task
from .common.widgets import ElidedLabel, empty_state_stack
from .common.workers import Task, request_stop_all, running_tasks, tracker
from .diagnostics import device_choices, device_label, diagnostics_text
from .evaluate.tab import PLOT_MODULES as EVALUATE_PLOTS
from .evaluate.tab import EvaluateTab
from .models.tab import ModelsTab
from .predict.tab import PredictTab
from .registry_model import RegistryModel
from .runs.tab import PLOT_MODULES as RUNS_PLOTS
from .runs.tab import RunsTab
from .train.tab import PLOT_MODULES as TRAIN_PLOTS
from .train.tab import TrainTab

STATUS_MS = 10_000
TABS = ("&Predict", "&Train", "&Runs", "&Evaluate", "&Models")
CLASSIFY_TABS = ("&Predict", "&Train", "&Evaluate", "&Models")  # Train: where training lives (edition.py)


def load_torch_task(report, stop) -> dict:
    """Import torch and the training modules (seconds), off the GUI thread, for the Train and Runs tabs and the
    device list. Classifying never waits for this: it runs in ONNX Runtime (core/engines/choose.py). Not
    torchvision: training imports it when it starts."""
    import os

    import torch

    import resnet_gui.core.train  # noqa: F401
    from resnet_gui.core.devices import available_devices, resolve_device

    device = resolve_device("auto")
    return {"devices": device_choices(available_devices(), os.cpu_count() or 1), "device": str(device),
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "device_label": device_label(str(device), torch.get_num_threads(),
                                         torch.cuda.get_device_name(device) if device.type == "cuda" else None),
            "torch": torch.__version__, "cuda": torch.version.cuda}


class MainWindow(QMainWindow):
    def __init__(self, settings, first_listing=None, parent=None):
        """first_listing: the registry's first listing, shared with the model opened ahead (app.py)."""
        super().__init__(parent)
        self.settings = settings
        self.torch_info: dict | None = None    # PyTorch's devices once loaded; {} when absent or failed
        self._help = None                       # the help window, when open
        self.classify_ready = False
        self._closing = False
        self._waiting_to_close = False
        self._preload: Task | None = None       # the plots' modules, imported once the first model is ready
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.registry = RegistryModel(self, first_listing)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.can_train = edition.can_train()  # the classify-only edition has no PyTorch: no Train and Runs tabs
        self.predict_tab = PredictTab(self.registry, settings)
        self.train_tab = TrainTab(settings) if self.can_train else None
        self.runs_tab = RunsTab() if self.can_train else None
        self.evaluate_tab = EvaluateTab(self.registry, settings)
        self.models_tab = ModelsTab(self.registry, settings)
        self.training_elsewhere = None
        if not self.can_train:  # one sentence where the Train and Runs tabs would be
            self.training_elsewhere = QWidget()
            _stack, label = empty_state_stack(self.training_elsewhere, edition.TRAINING_ELSEWHERE)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tab_names = TABS if self.can_train else CLASSIFY_TABS
        pages = self._tabs() if self.can_train else (self.predict_tab, self.training_elsewhere, self.evaluate_tab,
                                                     self.models_tab)
        for tab, name in zip(pages, self.tab_names):
            self.tabs.addTab(tab, name.replace("&", ""))
        self.setCentralWidget(self.tabs)

        self.status_line = ElidedLabel()
        self.status_line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # what is left
        self.model_label = ElidedLabel("Model: –")
        self.model_label.setMaximumWidth(320)
        self.device_label = ElidedLabel("Starting…")
        self.device_label.setMaximumWidth(260)
        self.statusBar().addWidget(self.status_line, 1)
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(lambda: self.status_line.setText(""))
        self._build_menus()

        self._status_from: object = None   # the tab whose message the status line shows
        for tab in self._tabs():
            tab.status_message.connect(lambda message, tab=tab: self.show_status(message, tab))
        self.predict_tab.active_model_changed.connect(self._active_model)
        self.models_tab.use_model_requested.connect(self._use_model)
        self.evaluate_tab.open_image_requested.connect(self._open_in_predict)
        if self.can_train:  # label decisions made in Evaluate apply to the Train tab's next run
            self.evaluate_tab.label_decisions.connect(self.train_tab.health.apply_decisions)
        self.predict_tab.evaluate_folder_requested.connect(self._evaluate_folder)
        self.predict_tab.add_familiarity_requested.connect(self._add_familiarity)
        if self.can_train:
            self._connect_runs()
        self.registry.demo_installed.connect(
            lambda name: self.show_status(f"Installed the demo model “{name}”: press Try a sample on the Predict tab."))

        geometry = settings.get("window.geometry")  # base64, checked by the settings schema
        if not (geometry and self.restoreGeometry(QByteArray(base64.b64decode(geometry)))):
            self.resize(1200, 800)
        self.tabs.setCurrentIndex(settings.get("window.tab", 0))

    def _tabs(self) -> tuple:
        """The feature tabs this edition has."""
        return tuple(tab for tab in (self.predict_tab, self.train_tab, self.runs_tab, self.evaluate_tab,
                                     self.models_tab) if tab is not None)

    def _connect_runs(self) -> None:
        runs, train = self.runs_tab, self.train_tab
        train.model_saved.connect(lambda name: self.registry.refresh())
        train.evaluate_requested.connect(self._evaluate_model)
        train.training_busy_changed.connect(runs.set_training)
        train.training_started.connect(runs.set_current_run)
        runs.resume_requested.connect(lambda name: self._train_run(name, more=False))
        runs.more_epochs_requested.connect(lambda name: self._train_run(name, more=True))
        runs.use_model_requested.connect(self._use_model)
        runs.show_model_requested.connect(self._show_model)
        runs.evaluate_requested.connect(self._evaluate_model)
        self.registry.renamed.connect(train.model_renamed)
        self.registry.renamed.connect(self._status_renamed)
        self.registry.changed.connect(lambda: runs.set_model_names(self.registry.run_models()))

    def _train_run(self, name: str, more: bool) -> None:
        info = self.runs_tab.info(name)
        self.tabs.setCurrentWidget(self.train_tab)
        done = info.epoch if info is not None else None
        if more:
            self.train_tab.ask_more_epochs(name, done)
        else:
            self.train_tab.resume(name, epochs_done=done)

    def _show_model(self, name: str) -> None:
        self.models_tab.select(name)
        self.tabs.setCurrentWidget(self.models_tab)

    def _add_familiarity(self, name: str) -> None:
        """The Predict tab's trust banner asked for familiarity data: the Models tab's dialog, for that model."""
        self._show_model(name)
        if self.models_tab.selected() == name:
            self.models_tab.familiarity_dialog()

    # ---- start-up ---------------------------------------------------------------------------------
    def start_background_loading(self) -> None:
        """Called once the window is shown: classifying is ready at once (ONNX Runtime needs no PyTorch) and the
        registry is listed; once the Predict tab has its first model, PyTorch (training, devices) loads in a worker
        where it is installed, and the plots' modules in another (_after_first_model)."""
        self.classify_ready = True
        session = self.predict_tab.session
        for signal in (session.model_done, session.model_failed, self.registry.changed, self.registry.failed):
            signal.connect(self._after_first_model)
        self.predict_tab.set_ready("auto")
        self.evaluate_tab.set_ready("auto")
        self.models_tab.set_ready()
        self.registry.refresh()
        if not self.can_train:
            self.torch_info = {}
            self.device_label.setText("Device: CPU (ONNX Runtime)")
            self.device_label.setToolTip("PyTorch is not installed: models classify on the CPU; training needs the "
                                         "full edition")
            return
        self.device_label.setText("Device: CPU (ONNX Runtime); loading PyTorch…")

    def _after_first_model(self, *_args) -> None:
        """The Predict tab has its first model loaded (or failed to, or has none to load, or the registry could not
        be listed): what start-up left for later begins. PyTorch loads in a worker (importing it competes with
        opening the model for the interpreter: seconds), and the plots' modules (pyqtgraph) in another, so that
        opening the Train, Runs or Evaluate tab later only builds their widgets."""
        session = self.predict_tab.session
        if self._preload is not None or self._closing or (self.registry.loaded and session.model_path is not None
                                                          and session.model is None and session.model_error is None):
            return  # begun already, closing (nothing new to wait for), or the model is still loading
        modules = EVALUATE_PLOTS + (TRAIN_PLOTS + RUNS_PLOTS if self.can_train else ())
        self._preload = Task(preload_task, modules, name="preload-plots")
        self._preload.start()
        if self.can_train:
            self._loader = Task(load_torch_task, name="load-torch")
            self._loader.done.connect(self._torch_ready)
            self._loader.failed.connect(self._torch_failed)
            self._loader.start()

    def _torch_ready(self, info: dict) -> None:
        self.torch_info = info
        self.device_label.setText(f"Device: {info['device_label']}")
        self.device_label.setToolTip(f"PyTorch {info['torch']}; classifying on the CPU runs in ONNX Runtime")
        self.train_tab.set_ready(info["devices"], info.get("gpus", 0))
        self.runs_tab.set_ready()

    def _torch_failed(self, failure) -> None:
        self.torch_info = {}
        self.device_label.setText("Device: CPU (ONNX Runtime); PyTorch failed to load")
        QMessageBox.critical(self, APP_NAME, "PyTorch could not be loaded, so models cannot be trained here; "
                             f"classifying still works.\n\n{failure.message}")

    def is_ready(self) -> bool:
        """Everything has loaded: classifying, and PyTorch for training where it is installed."""
        return self.classify_ready and self.torch_info is not None

    # ---- menus ------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open image…", QKeySequence.StandardKey.Open, self._open_image)
        self._action(file_menu, "Open &folder…", QKeySequence("Ctrl+Shift+O"), self._open_folder)
        self._action(file_menu, "&Paste image", QKeySequence.StandardKey.Paste, self._paste)
        self._action(file_menu, "&Export results as CSV…", QKeySequence("Ctrl+E"), self.predict_tab.export_csv)
        file_menu.addSeparator()
        self._action(file_menu, "&Import model…", QKeySequence("Ctrl+I"), self._import_model)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view = bar.addMenu("&View")
        self.tab_actions = []
        for i, name in enumerate(self.tab_names):
            # triggered(checked) would fill a lambda's first default: take it explicitly
            self.tab_actions.append(self._action(view, name, QKeySequence(f"Ctrl+{i + 1}"),
                                                 lambda _checked=False, i=i: self.tabs.setCurrentIndex(i)))
        view.addSeparator()
        theme_menu = view.addMenu("T&heme")
        current = self.settings.get("theme") or "system"
        for key, label in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
            act = theme_menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(key == current)
            act.triggered.connect(lambda _checked=False, k=key: self.set_theme(k))
            act.setData(key)
        self.theme_menu = theme_menu
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "How to read the &answers", QKeySequence.StandardKey.HelpContents,
                     lambda: self.show_help())
        self._action(help_menu, "&Glossary", None, lambda: self.show_help("glossary"))
        help_menu.addSeparator()
        self._action(help_menu, "Open &data folder", None, lambda: self._open_dir("data"))
        self._action(help_menu, "Open &log folder", None, lambda: self._open_dir("log"))
        self._action(help_menu, "&Copy diagnostics", None, self.copy_diagnostics)
        help_menu.addSeparator()
        self._action(help_menu, f"&About {APP_NAME}", None, self._about)

    def _action(self, menu, text, shortcut, slot) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _open_image(self) -> None:
        self.tabs.setCurrentWidget(self.predict_tab)
        self.predict_tab.open_image_dialog()

    def _open_folder(self) -> None:
        self.tabs.setCurrentWidget(self.predict_tab)
        self.predict_tab.open_folder_dialog()

    def _paste(self) -> None:
        focus = QApplication.focusWidget()
        if focus is not None and hasattr(focus, "paste") and focus is not self.predict_tab:
            focus.paste()  # text fields keep their own paste
            return
        self.tabs.setCurrentWidget(self.predict_tab)
        self.predict_tab.paste()

    def _import_model(self) -> None:
        self.tabs.setCurrentWidget(self.models_tab)
        self.models_tab.import_dialog()

    def set_theme(self, name: str) -> None:
        theme.apply(QApplication.instance(), name)
        self.settings.set("theme", name)
        for act in self.theme_menu.actions():
            act.setChecked(act.data() == name)

    def _open_dir(self, which: str) -> None:
        from resnet_gui.core import paths

        folder = paths.data_dir() if which == "data" else paths.log_dir()
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def copy_diagnostics(self) -> str:
        text = diagnostics_text(self.torch_info)
        QApplication.clipboard().setText(text)
        self.show_status("Copied the versions, device and folders to the clipboard: paste them into a bug report.")
        return text

    def show_help(self, anchor: str | None = None):
        """How to read the answers (or the glossary), offline, beside the window (not modal)."""
        from .help import HelpDialog

        if self._help is not None:
            self._help.close()
        self._help = HelpDialog(anchor, self)
        self._help.show()
        return self._help

    def _about(self) -> None:
        import onnxruntime

        torch_v = (self.torch_info or {}).get("torch") or ("loading" if self.torch_info is None else "not installed")
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b> {__version__}<br>Image classification with ResNet models: predict, "
                          f"train on CIFAR-10 or your own folders, manage models.<br><br>ONNX Runtime "
                          f"{onnxruntime.__version__}, PyTorch {torch_v}")

    # ---- coordination -----------------------------------------------------------------------------
    def show_status(self, message: str, source: object = None) -> None:
        """Show a tab's `message` for STATUS_MS; an empty message from a tab takes back only its own."""
        if not message and source is not None and source is not self._status_from:
            return
        self._status_from = source
        self.status_line.setText(message)
        self._status_timer.start(STATUS_MS)

    def _status_renamed(self, old: str, new: str) -> None:
        """A message about a model that was just renamed names it by its new name."""
        text = self.status_line.full_text()
        if f"“{old}”" in text:
            self.status_line.setText(text.replace(f"“{old}”", f"“{new}”"))

    def _active_model(self, name: str) -> None:
        self.model_label.setText(f"Model: {name}" if name else "Model: none")

    def _use_model(self, name: str) -> None:
        self.predict_tab.select_model(name)
        self.tabs.setCurrentWidget(self.predict_tab)

    def _open_in_predict(self, path: str) -> None:
        self.predict_tab.set_source(path, path)
        self.tabs.setCurrentWidget(self.predict_tab)

    def _evaluate_model(self, name: str) -> None:
        self.tabs.setCurrentWidget(self.evaluate_tab)
        self.evaluate_tab.evaluate_model(name)

    def _evaluate_folder(self, name: str, folder: str) -> None:
        self.tabs.setCurrentWidget(self.evaluate_tab)
        self.evaluate_tab.evaluate_folder(name, folder)

    def dragEnterEvent(self, event) -> None:  # drops anywhere go to Predict
        self.predict_tab.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        self.tabs.setCurrentWidget(self.predict_tab)
        self.predict_tab.dropEvent(event)

    # ---- closing ----------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        if self.can_train and self.train_tab.is_training() and not self._closing:
            answer = QMessageBox.question(
                self, "Training is running",
                "A training run is in progress. Stop it and quit?\n\nThe best model and the last completed epoch "
                "are already saved; you can resume the run later.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self._closing = True
        if running_tasks() or self._child_training():
            # stop everything, then close for real once the last worker thread has ended
            event.ignore()
            self.show_status("Stopping background work…")
            self.setEnabled(False)
            if not self._waiting_to_close:
                # connected before looking again: a task that ends from now on is always heard
                tracker().all_finished.connect(self._close_when_idle, Qt.ConnectionType.QueuedConnection)
                self._waiting_to_close = True
                if self.can_train:
                    self.train_tab.training_busy_changed.connect(self._close_when_idle,
                                                                 Qt.ConnectionType.QueuedConnection)
            request_stop_all()
            if self.can_train:
                self.train_tab.stop()  # a several-GPU run: the stop file, then a grace period
            self._close_when_idle()
            return
        if self._waiting_to_close:
            tracker().all_finished.disconnect(self._close_when_idle)
            if self.can_train:
                self.train_tab.training_busy_changed.disconnect(self._close_when_idle)
            self._waiting_to_close = False
        if self.can_train:
            self.runs_tab.shutdown()
        self.save_settings()
        event.accept()

    def _child_training(self) -> bool:
        return self.can_train and self.train_tab.child_running()

    def _close_when_idle(self, *_args) -> None:
        if running_tasks() or self._child_training():
            request_stop_all()  # tasks started while stopping (a final refresh) are stopped too
            return              # all_finished calls again
        if self.isVisible():
            self.close()

    def save_settings(self) -> None:
        self.settings.set("window.geometry", base64.b64encode(bytes(self.saveGeometry().data())).decode("ascii"))
        self.settings.set("window.tab", self.tabs.currentIndex())
        if self.can_train:
            self.train_tab.save_settings()
        self.settings.save()
