"""Train tab: choose a recipe and a dataset, start/stop/resume, watch live curves and the log."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.archs import ARCHS
from resnet_gui.core.train.config import OPTIMIZERS, SCHEDULES, TrainConfig, recipe

from .tasks import Task
from .widgets import Banner

MODES = [
    ("cifar10", "ResNet-18 on CIFAR-10 (from scratch)",
     "Trains ResNet-18 from random weights on the 60,000 small CIFAR-10 photos (10 classes such as cat, ship, "
     "truck); best on a GPU, where the default 30 epochs aim at about 94 % test accuracy."),
    ("finetune", "Fine-tune a pretrained model on my folder",
     "Starts from a ResNet already trained on ImageNet and adapts it to your own classes: put each class's "
     "images in its own sub-folder; a few dozen images per class often give good results."),
    ("scratch", "Train from scratch on my folder",
     "Trains a ResNet from random weights on your class folders: needs many more images and epochs than "
     "fine-tuning, but nothing pretrained."),
]
MODE_KEYS = [m[0] for m in MODES]


def _fmt_time(seconds) -> str:
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "–"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min {rem % 60:02d} s"


# ---- worker functions ------------------------------------------------------------------------------
def train_task(report, stop, config: dict, resume: str | None):
    from resnet_gui.core.train import train

    return train(TrainConfig.from_dict(config), report, stop, resume=resume)


def cifar_status_task(report, stop, location: str | None) -> dict:
    from resnet_gui.core.data.cifar import default_cifar_root, find_cifar10

    root = Path(location).expanduser() if location else default_cifar_root()
    base, tarball = find_cifar10(location or None)
    return {"root": str(root), "found": base is not None, "tarball": str(tarball) if tarball else None}


def cifar_download_task(report, stop, location: str | None) -> str:
    from resnet_gui.core.data.cifar import locate_cifar10
    from resnet_gui.core.errors import Cancelled
    from resnet_gui.core.progress import Progress

    progress = Progress(lambda what, done, total: report({"message": what, "done": done, "total": total}), stop)
    try:
        return str(locate_cifar10(location or None, download_if_missing=True, progress=progress))
    except Cancelled:
        return ""


def scan_task(report, stop, folder: str, val_split: float, seed: int) -> dict:
    from resnet_gui.core.data.folders import scan_folder

    split = scan_folder(folder, val_split=val_split, seed=seed)
    return {"classes": split.class_names, "train": split.counts(split.train), "val": split.counts(split.val),
            "layout": split.layout, "warnings": split.warnings, "test": len(split.test)}


def runs_task(report, stop) -> list[dict]:
    from resnet_gui.core.train import list_runs

    return [r for r in list_runs() if "error" not in r and r["epoch"] < r["epochs"]]


class TrainTab(QWidget):
    status_message = Signal(str)
    model_saved = Signal(str)        # registry name of a new/updated best model
    training_changed = Signal(bool)  # running or not

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.ready = False
        self.devices: list[tuple[str, str]] = []
        self.task: Task | None = None
        self.aux: Task | None = None
        self.runs: list[dict] = []
        self.last_result = None
        self._build()
        self._load_form()

    # ---- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 12, 12, 12)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        outer.addWidget(splitter)

        # left: the form, scrollable
        form_host = QWidget()
        left = QVBoxLayout(form_host)
        left.setContentsMargins(0, 0, 8, 0)
        left.setSpacing(10)

        mode_box = QGroupBox("What to train")
        ml = QVBoxLayout(mode_box)
        self.mode_combo = QComboBox()
        for key, label, _ in MODES:
            self.mode_combo.addItem(label, key)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        self.mode_help.setStyleSheet("color: palette(placeholder-text);")
        ml.addWidget(self.mode_combo)
        ml.addWidget(self.mode_help)
        left.addWidget(mode_box)

        data_box = QGroupBox("Data")
        dl = QVBoxLayout(data_box)
        self.data_stack = QStackedWidget()
        # CIFAR page
        cifar = QWidget()
        cl = QGridLayout(cifar)
        cl.setContentsMargins(0, 0, 0, 0)
        self.cifar_location = QLineEdit()
        self.cifar_location.setPlaceholderText("the app's data folder")
        self.cifar_location.setToolTip("A folder holding cifar-10-batches-py or cifar-10-python.tar.gz")
        self.cifar_location.editingFinished.connect(self.check_cifar)
        browse = QPushButton("Locate…")
        browse.clicked.connect(self._browse_cifar)
        self.cifar_status = QLabel("")
        self.cifar_status.setWordWrap(True)
        self.download_button = QPushButton("Download CIFAR-10 (163 MB)")
        self.download_button.clicked.connect(self.download_cifar)
        self.download_progress = QProgressBar()
        self.download_progress.hide()
        self.download_cancel = QPushButton("Cancel")
        self.download_cancel.hide()
        self.download_cancel.clicked.connect(lambda: self.aux and self.aux.cancel())
        cl.addWidget(QLabel("Location:"), 0, 0)
        cl.addWidget(self.cifar_location, 0, 1)
        cl.addWidget(browse, 0, 2)
        cl.addWidget(self.cifar_status, 1, 0, 1, 3)
        dlrow = QHBoxLayout()
        dlrow.addWidget(self.download_button)
        dlrow.addWidget(self.download_progress, 1)
        dlrow.addWidget(self.download_cancel)
        cl.addLayout(dlrow, 2, 0, 1, 3)
        self.data_stack.addWidget(cifar)
        # folder page
        folder = QWidget()
        fl = QGridLayout(folder)
        fl.setContentsMargins(0, 0, 0, 0)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder with one sub-folder per class")
        self.folder_edit.editingFinished.connect(self.scan_folder)
        fbrowse = QPushButton("Choose…")
        fbrowse.clicked.connect(self._browse_folder)
        self.folder_summary = QLabel("Layout: folder/cats/*.jpg, folder/dogs/*.jpg … "
                                     "or folder/train/… and folder/val/…")
        self.folder_summary.setWordWrap(True)
        fl.addWidget(QLabel("Folder:"), 0, 0)
        fl.addWidget(self.folder_edit, 0, 1)
        fl.addWidget(fbrowse, 0, 2)
        fl.addWidget(self.folder_summary, 1, 0, 1, 3)
        self.data_stack.addWidget(folder)
        dl.addWidget(self.data_stack)
        left.addWidget(data_box)

        model_box = QGroupBox("Model")
        mf = QFormLayout(model_box)
        self.arch_combo = QComboBox()
        for name, info in ARCHS.items():
            self.arch_combo.addItem(name, name)
            self.arch_combo.setItemData(self.arch_combo.count() - 1, info.summary, Qt.ItemDataRole.ToolTipRole)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("downloaded automatically (or choose a local file)")
        wbrow = QHBoxLayout()
        wbrow.addWidget(self.weights_edit, 1)
        wb = QPushButton("Choose…")
        wb.clicked.connect(self._browse_weights)
        wbrow.addWidget(wb)
        self.weights_row = QWidget()
        self.weights_row.setLayout(wbrow)
        wbrow.setContentsMargins(0, 0, 0, 0)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("automatic")
        mf.addRow("Architecture:", self.arch_combo)
        mf.addRow("ImageNet weights:", self.weights_row)
        mf.addRow("Save as:", self.name_edit)
        self.model_form = mf
        left.addWidget(model_box)

        hp_box = QGroupBox("Settings")
        hp = QFormLayout(hp_box)
        self.epochs_spin = QSpinBox(minimum=1, maximum=10000)
        self.batch_spin = QSpinBox(minimum=1, maximum=65536)
        self.lr_spin = QDoubleSpinBox(decimals=6, minimum=1e-6, maximum=10.0, singleStep=0.0005)
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItems(list(OPTIMIZERS))
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItems(list(SCHEDULES))
        self.wd_spin = QDoubleSpinBox(decimals=6, minimum=0.0, maximum=1.0, singleStep=0.0001)
        self.smoothing_spin = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.9, singleStep=0.05)
        self.warmup_spin = QDoubleSpinBox(decimals=1, minimum=-0.1, maximum=1000.0, singleStep=0.5)
        self.warmup_spin.setSpecialValueText("automatic")
        self.freeze_spin = QSpinBox(minimum=0, maximum=1000)
        self.val_spin = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=0.9, singleStep=0.05)
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.flip_check = QCheckBox("random horizontal flips")
        self.precision_combo = QComboBox()
        self.precision_combo.addItem("automatic (bf16 where the hardware has it)", "auto")
        self.precision_combo.addItem("fp32", "fp32")
        self.precision_combo.addItem("bf16", "bf16")
        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic", "auto")
        for combo in (self.precision_combo, self.device_combo, self.mode_combo, self.arch_combo):
            # long entries must not widen the form beyond its column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        self.workers_spin = QSpinBox(minimum=-1, maximum=64)
        self.workers_spin.setSpecialValueText("automatic")
        rows = [("Epochs:", self.epochs_spin), ("Batch size:", self.batch_spin), ("Learning rate:", self.lr_spin),
                ("Optimizer:", self.optimizer_combo), ("Schedule:", self.schedule_combo),
                ("Weight decay:", self.wd_spin), ("Label smoothing:", self.smoothing_spin),
                ("Warm-up epochs:", self.warmup_spin), ("Frozen backbone epochs:", self.freeze_spin),
                ("Validation split:", self.val_spin), ("Seed:", self.seed_spin), ("Augmentation:", self.flip_check),
                ("Precision:", self.precision_combo), ("Device:", self.device_combo),
                ("Loader workers:", self.workers_spin)]
        self.form_rows = {}
        for label, widget in rows:
            hp.addRow(label, widget)
            self.form_rows[label] = widget
        self.freeze_spin.setToolTip("Train only the new classifier head for this many epochs first")
        self.val_spin.setToolTip("Share of each class held out for validation when the folder has no val/ sub-folder")
        reset = QPushButton("Reset to recipe defaults")
        reset.clicked.connect(lambda: self._apply_config(recipe(self.mode())))
        hp.addRow("", reset)
        self.hp_form = hp
        left.addWidget(hp_box)
        left.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidget(form_host)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        form_host.setMinimumWidth(360)
        splitter.addWidget(scroll)

        # right: controls, progress, plots, log
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        rl.setSpacing(8)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QToolButton()
        self.resume_button.setText("Resume")
        self.resume_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.resume_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.resume_button.clicked.connect(lambda: self.runs and self.resume(self.runs[0]["run_name"]))
        self.resume_menu = QMenu(self)
        self.resume_button.setMenu(self.resume_menu)
        self.resume_button.setEnabled(False)
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        rl.addLayout(buttons)
        self.banner = Banner()
        rl.addWidget(self.banner)
        self.progress = QProgressBar()
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        rl.addWidget(self.progress)
        stats = QHBoxLayout()
        self.epoch_label = QLabel("Epoch –")
        self.speed_label = QLabel("– images/s")
        self.eta_label = QLabel("ETA –")
        self.acc_label = QLabel("Best val. accuracy –")
        for w in (self.epoch_label, self.speed_label, self.eta_label, self.acc_label):
            w.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            stats.addWidget(w)
        rl.addLayout(stats)
        from .plots import TrainingPlots

        self.plots = TrainingPlots()
        rl.addWidget(self.plots, 3)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("Dataset summary, warnings and one line per epoch appear here.")
        rl.addWidget(self.log, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 800])
        self._set_running(False)

    # ---- form <-> config ------------------------------------------------------------------------
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def _mode_changed(self) -> None:
        mode = self.mode()
        self.mode_help.setText(dict((k, h) for k, _, h in MODES)[mode])
        self.data_stack.setCurrentIndex(0 if mode == "cifar10" else 1)
        saved = (self.settings.get("train.forms") or {}).get(mode)
        cfg = recipe(mode)
        if saved:
            try:
                cfg = TrainConfig.from_dict({**cfg.to_dict(), **saved, "recipe": mode})
            except (TypeError, ValueError):
                pass
        self._apply_config(cfg)
        if mode == "cifar10":
            self.check_cifar()
        elif self.folder_edit.text():
            self.scan_folder()

    def _apply_config(self, cfg: TrainConfig) -> None:
        mode = self.mode()
        for i in range(self.arch_combo.count()):  # only sensible architectures per mode
            name = self.arch_combo.itemData(i)
            allowed = not (mode == "finetune" and ARCHS[name].cifar_stem)
            self.arch_combo.model().item(i).setEnabled(allowed)
        self.arch_combo.setCurrentIndex(max(0, self.arch_combo.findData(cfg.arch)))
        self.model_form.setRowVisible(self.weights_row, mode == "finetune")
        self.weights_edit.setText(cfg.weights_file or "")
        self.epochs_spin.setValue(cfg.epochs)
        self.batch_spin.setValue(cfg.batch_size)
        self.lr_spin.setValue(cfg.lr)
        self.optimizer_combo.setCurrentText(cfg.optimizer)
        self.schedule_combo.setCurrentText(cfg.schedule)
        self.wd_spin.setValue(cfg.weight_decay)
        self.smoothing_spin.setValue(cfg.label_smoothing)
        self.warmup_spin.setValue(-0.1 if cfg.warmup_epochs is None else cfg.warmup_epochs)
        self.freeze_spin.setValue(cfg.freeze_backbone_epochs)
        self.val_spin.setValue(cfg.val_split)
        self.seed_spin.setValue(cfg.seed)
        self.flip_check.setChecked(cfg.hflip)
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(cfg.precision)))
        index = self.device_combo.findData(cfg.device)
        self.device_combo.setCurrentIndex(index if index >= 0 else 0)
        self.workers_spin.setValue(-1 if cfg.workers is None else cfg.workers)
        self.hp_form.setRowVisible(self.freeze_spin, mode == "finetune")
        self.hp_form.setRowVisible(self.val_spin, mode != "cifar10")
        self.hp_form.setRowVisible(self.workers_spin, mode != "cifar10")

    def config(self) -> TrainConfig:
        mode = self.mode()
        base = recipe(mode)
        data = self.cifar_location.text().strip() if mode == "cifar10" else self.folder_edit.text().strip()
        device = self.device_combo.currentData() or "auto"
        cfg = TrainConfig.from_dict({
            **base.to_dict(),
            "data": data or None,
            "arch": self.arch_combo.currentData(),
            "weights_file": (self.weights_edit.text().strip() or None) if mode == "finetune" else None,
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "lr": self.lr_spin.value(),
            "optimizer": self.optimizer_combo.currentText(),
            "schedule": self.schedule_combo.currentText(),
            "weight_decay": self.wd_spin.value(),
            "label_smoothing": self.smoothing_spin.value(),
            "warmup_epochs": None if self.warmup_spin.value() < 0 else self.warmup_spin.value(),
            "freeze_backbone_epochs": self.freeze_spin.value() if mode == "finetune" else 0,
            "val_split": self.val_spin.value(),
            "seed": self.seed_spin.value(),
            "hflip": self.flip_check.isChecked(),
            "precision": self.precision_combo.currentData(),
            "device": device,
            "workers": None if self.workers_spin.value() < 0 else self.workers_spin.value(),
            "name": self.name_edit.text().strip() or None,
            "threads": self._threads_for(device),
        })
        return cfg

    def _threads_for(self, device: str) -> int | None:
        """On the CPU, leave one core to the GUI."""
        on_cpu = device == "cpu" or (device == "auto" and all(d == "cpu" for d, _ in self.devices))
        return max(1, (os.cpu_count() or 2) - 1) if on_cpu else None

    def _save_form(self) -> None:
        cfg = self.config().to_dict()
        forms = dict(self.settings.get("train.forms") or {})
        forms[self.mode()] = {k: v for k, v in cfg.items() if k not in ("threads", "name", "recipe", "dataset")}
        self.settings.set("train.forms", forms)
        self.settings.set("train.mode", self.mode())
        self.settings.set("train.cifar_location", self.cifar_location.text())
        self.settings.set("train.folder", self.folder_edit.text())

    def _load_form(self) -> None:
        self.cifar_location.setText(self.settings.get("train.cifar_location") or "")
        self.folder_edit.setText(self.settings.get("train.folder") or "")
        mode = self.settings.get("train.mode")
        index = MODE_KEYS.index(mode) if mode in MODE_KEYS else 0
        self.mode_combo.setCurrentIndex(index)
        self._mode_changed()

    def save_settings(self) -> None:
        self._save_form()

    # ---- readiness --------------------------------------------------------------------------------
    def set_ready(self, devices: list[tuple[str, str]]) -> None:
        self.ready = True
        self.devices = devices
        current = self.device_combo.currentData()
        self.device_combo.clear()
        self.device_combo.addItem("Automatic (best available)", "auto")
        for dev, label in devices:
            self.device_combo.addItem(label, dev)
        index = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(index if index >= 0 else 0)
        self._set_running(False)
        if self.mode() == "cifar10":
            self.check_cifar()
        elif self.folder_edit.text():
            self.scan_folder()
        self.refresh_runs()

    def is_training(self) -> bool:
        return self.task is not None

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(self.ready and not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(self.ready and not running and bool(self.runs))
        for w in (self.mode_combo, self.arch_combo, self.data_stack, self.hp_form.parentWidget(), self.name_edit,
                  self.weights_row):
            w.setEnabled(not running)
        if not self.ready:
            self.start_button.setToolTip("PyTorch is still loading…")
        else:
            self.start_button.setToolTip("")

    # ---- datasets -----------------------------------------------------------------------------------
    def _run_aux(self, fn, *args, on_done, on_event=None, on_failed=None, name="aux") -> None:
        """One helper task at a time (dataset checks, download); runs once PyTorch has loaded."""
        if not self.ready:
            return
        if self.aux is not None:
            if self.aux.objectName() == "cifar-download" and name != "cifar-download":
                return  # a status check must not cancel a download in progress
            self.aux.cancel()
        task = Task(fn, *args, name=name)
        task.succeeded.connect(on_done)
        task.failed.connect(on_failed or (lambda msg: self.banner.show_message(msg, "error")))
        if on_event is not None:
            task.event.connect(on_event)
        task.finished.connect(lambda t=task: self._aux_finished(t))
        self.aux = task
        task.start()

    def _aux_finished(self, task) -> None:
        if self.aux is task:
            self.aux = None
        self.download_progress.hide()
        self.download_cancel.hide()
        self.download_button.setEnabled(True)

    def _browse_cifar(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder holding CIFAR-10 (cifar-10-batches-py or the tarball)",
                                                  self.cifar_location.text() or str(Path.home()))
        if folder:
            self.cifar_location.setText(folder)
            self.check_cifar()

    def check_cifar(self) -> None:
        self._run_aux(cifar_status_task, self.cifar_location.text().strip() or None, on_done=self._cifar_status,
                      name="cifar-status")

    def _cifar_status(self, info: dict) -> None:
        if info["found"]:
            self.cifar_status.setText(f"✓ CIFAR-10 found in {info['root']}")
            self.download_button.hide()
        elif info["tarball"]:
            self.cifar_status.setText(f"✓ CIFAR-10 archive found: {info['tarball']} (extracted when training starts)")
            self.download_button.hide()
        else:
            self.cifar_status.setText(f"CIFAR-10 is not in {info['root']} yet. Download it, or locate a folder "
                                      "that holds cifar-10-batches-py or cifar-10-python.tar.gz.")
            self.download_button.show()

    def download_cifar(self) -> None:
        self.download_button.setEnabled(False)
        self.download_progress.setRange(0, 0)
        self.download_progress.show()
        self.download_cancel.show()
        self.banner.clear_message()
        self._run_aux(cifar_download_task, self.cifar_location.text().strip() or None, on_done=self._downloaded,
                      on_event=self._download_progress, name="cifar-download")

    def _download_progress(self, ev: dict) -> None:
        total = ev.get("total") or 0
        if total:
            self.download_progress.setRange(0, 1000)
            self.download_progress.setValue(int(1000 * ev["done"] / total))
        self.download_progress.setFormat(f"{ev['message']}: {ev['done'] / 1e6:.0f} MB")

    def _downloaded(self, path: str) -> None:
        if path:
            self.banner.show_message(f"CIFAR-10 is ready in {path}.", "success")
        self.check_cifar()

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder (one sub-folder per class)",
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)
            self.scan_folder()

    def scan_folder(self) -> None:
        folder = self.folder_edit.text().strip()
        if not folder:
            return
        if self.ready:
            self.folder_summary.setText("Scanning…")
        self._run_aux(scan_task, folder, self.val_spin.value(), self.seed_spin.value(), on_done=self._scanned,
                      on_failed=lambda msg: self.folder_summary.setText(f"⚠ {msg}"), name="scan-folder")

    def _scanned(self, info: dict) -> None:
        counts = ", ".join(f"{c} {info['train'][c]}+{info['val'][c]}" for c in info["classes"][:20])
        more = f" … ({len(info['classes'])} classes)" if len(info["classes"]) > 20 else ""
        layout = "train/ and val/ folders" if info["layout"] == "split" else "validation split from each class"
        text = (f"✓ {len(info['classes'])} classes, {sum(info['train'].values())} training and "
                f"{sum(info['val'].values())} validation images ({layout}).\nPer class (train+val): {counts}{more}")
        for w in info["warnings"]:
            text += f"\n⚠ {w}"
        self.folder_summary.setText(text)

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ImageNet weights file", str(Path.home()),
                                              "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.weights_edit.setText(path)

    # ---- runs -----------------------------------------------------------------------------------
    def refresh_runs(self) -> None:
        if not self.ready:
            return
        task = Task(runs_task, name="list-runs")
        task.succeeded.connect(self._runs_listed)
        task.start()
        self._runs_task = task

    def _runs_listed(self, runs: list[dict]) -> None:
        self.runs = runs
        self.resume_menu.clear()
        for r in runs:
            acc = f", best {r['best_val_accuracy']:.1%}" if r.get("best_val_accuracy") is not None else ""
            action = self.resume_menu.addAction(f"{r['run_name']} (epoch {r['epoch']}/{r['epochs']}{acc})")
            action.triggered.connect(lambda checked=False, n=r["run_name"]: self.resume(n))
        if runs:
            self.resume_button.setToolTip(f"Continue {runs[0]['run_name']} from epoch {runs[0]['epoch'] + 1}")
        self.resume_button.setEnabled(self.ready and self.task is None and bool(runs))

    # ---- training -------------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config()
        from resnet_gui.core.errors import ResnetGuiError

        try:
            cfg.validate()
        except ResnetGuiError as exc:
            self.banner.show_message(str(exc), "error")
            return
        self._save_form()
        self.settings.save()
        self._launch(cfg.to_dict(), None, f"Training {cfg.arch}…")

    def resume(self, run_name: str) -> None:
        run = next((r for r in self.runs if r["run_name"] == run_name), None)
        if run is None:
            return
        cfg = TrainConfig.from_dict(run["config"])
        device = self.device_combo.currentData() or cfg.device
        cfg = cfg.replace(device=device, threads=self._threads_for(device))
        self._launch(cfg.to_dict(), run["path"], f"Resuming {run_name}…")

    def _launch(self, config: dict, resume: str | None, message: str) -> None:
        if self.task is not None:
            return
        if self.aux is not None:
            self.aux.cancel()
        self.banner.clear_message()
        self.log.appendPlainText(f"— {message}")
        self.plots.clear()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing…")
        self.epoch_label.setText("Epoch –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("ETA –")
        self.acc_label.setText("Best val. accuracy –")
        self.last_result = None
        self.best_acc = None
        task = Task(train_task, config, resume, name="train")
        task.event.connect(self._on_event)
        task.succeeded.connect(self._on_result)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self.task = task
        self._set_running(True)
        self.training_changed.emit(True)
        self.status_message.emit(message)
        task.start()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.stop_button.setEnabled(False)
            self.progress.setFormat("Stopping after this batch…")
            self.status_message.emit("Stopping training after the current batch…")

    def _on_event(self, ev) -> None:
        kind = ev.kind
        if kind == "batch":
            total = ev.epochs * ev.steps
            done = (ev.epoch - 1) * ev.steps + ev.step
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"Epoch {ev.epoch}/{ev.epochs} · batch {ev.step}/{ev.steps} · %p%")
            self.epoch_label.setText(f"Epoch {ev.epoch}/{ev.epochs} · loss {ev.loss:.3f}")
            self.speed_label.setText(f"{ev.images_per_s:.0f} images/s")
            self.eta_label.setText(f"ETA {_fmt_time(ev.eta_s)}")
            self.plots.add_batches(ev.losses)
        elif kind == "epoch":
            self.plots.add_epoch(ev)
            star = "  ★ best" if ev.best else ""
            if ev.best:
                self.best_acc = ev.val_accuracy
                self.acc_label.setText(f"Best val. accuracy {ev.val_accuracy:.1%}")
            self.eta_label.setText(f"ETA {_fmt_time(ev.eta_s)}")
            self.log.appendPlainText(
                f"epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.4f}, acc {ev.train_accuracy:.1%}"
                f" | val loss {ev.val_loss:.4f}, acc {ev.val_accuracy:.1%} | {ev.images_per_s:.0f} img/s, "
                f"{ev.epoch_time_s:.0f} s{star}")
        elif kind == "started":
            self.plots.start(ev.steps_per_epoch, ev.history)
            self.progress.setRange(0, ev.epochs * ev.steps_per_epoch)
            self.progress.setValue(ev.start_epoch * ev.steps_per_epoch)
            resumed = f", resuming after epoch {ev.start_epoch}" if ev.start_epoch else ""
            self.log.appendPlainText(f"Training {ev.config['arch']} as “{ev.run_name}” on {ev.device} "
                                     f"({ev.precision}): {ev.epochs} epochs × {ev.steps_per_epoch} batches"
                                     f"{resumed}")
        elif kind == "dataset":
            d = ev.description
            self.log.appendPlainText(f"Dataset {d.get('name')}: {d.get('train_images')} training, "
                                     f"{d.get('val_images')} validation images ({d.get('val_source')}).")
        elif kind == "warning":
            self.log.appendPlainText(f"⚠ {ev.message}")
            self.banner.show_message(ev.message, "warning")
        elif kind in ("status", "prepare"):
            if kind == "prepare" and ev.total:
                self.progress.setRange(0, ev.total)
                self.progress.setValue(ev.done)
            else:
                self.progress.setRange(0, 0)
            self.progress.setFormat(f"{ev.message}…")
            if kind == "status":
                self.log.appendPlainText(ev.message + "…")
        elif kind == "checkpoint" and ev.which == "best":
            self.log.appendPlainText(f"Saved the best model so far as “{ev.name}” "
                                     f"(val. accuracy {ev.val_accuracy:.1%}).")
            self.model_saved.emit(ev.name)

    def _on_result(self, result) -> None:
        self.last_result = result
        kind = {"finished": "success", "cancelled": "info", "failed": "error"}[result.status]
        text = result.message[0].upper() + result.message[1:]
        if result.status == "finished" and result.best_name:
            text = (f"Done: “{result.best_name}” reached {result.best_val_accuracy:.1%} validation accuracy. "
                    "It is in the Models tab and in the Predict tab's model list.")
        elif result.status == "cancelled" and result.epochs_done:
            text = (f"Stopped. {result.epochs_done} epoch(s) completed; the best model "
                    f"“{result.best_name}” ({result.best_val_accuracy:.1%}) is saved. Use Resume to continue.")
        self.banner.show_message(text, kind)
        self.log.appendPlainText(("✗ " if result.status == "failed" else "— ") + result.message)
        self.progress.setFormat({"finished": "Finished", "cancelled": "Stopped", "failed": "Failed"}[result.status])
        self.eta_label.setText("ETA –")
        if result.status != "finished":
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.status_message.emit(f"Training {result.status}")
        if result.best_name:
            self.model_saved.emit(result.best_name)

    def _on_failed(self, message: str) -> None:
        self.banner.show_message(message, "error")
        self.log.appendPlainText(f"✗ {message}")

    def _on_finished(self) -> None:
        self.task = None
        self._set_running(False)
        self.training_changed.emit(False)
        self.refresh_runs()
