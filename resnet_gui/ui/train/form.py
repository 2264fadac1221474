"""The training form: what to train (recipe), the model, and every setting, per recipe.

Each recipe keeps its own edits: switching recipes and back restores what was typed (and settings keep
them between sessions). The device choice is kept until the devices are known, then restored."""
from __future__ import annotations

import logging
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.models.archs import ARCHS
from resnet_gui.core.train.config import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    heading,
    recipe,
    settings,
    usable_form,
)

from .estimate import TimeEstimate
from .weights_panel import WeightsPanel

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
AUGMENT_LABELS = [("pad_crop", "Pad and random crop"), ("random_resized_crop", "Random resized crop"),
                  ("none", "None")]
PRECISION_LABELS = [("auto", "Automatic"), ("fp32", "fp32"), ("bf16", "bf16")]
BALANCE_LABELS = [("none", "None"), ("weighted-loss", "Weighted loss"), ("weighted-sampler", "Weighted sampler")]
PER_RUN = ("name", "recipe", "dataset", "data")  # never taken from a saved form
# the work of one forward pass at the architecture's own input size (GFLOPs, torchvision's figures at 224 px;
# resnet18_cifar at 32 px): the speed word beside each architecture is relative to ResNet-18's
GFLOPS = {"resnet18_cifar": 0.56, "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80,
          "resnet152": 11.51, "resnext50_32x4d": 4.23, "resnext101_32x8d": 16.41, "wide_resnet50_2": 11.40}
ADVANCED_SETTING = "train.advanced_open"
# GUI training on the CPU uses every core by default: benchmarks/bench_gui.py measured the worst GUI-thread
# stall with all cores busy well under 100 ms (see the README); the Threads field can leave some free.
RESERVED_CORES = 0
log = logging.getLogger(__name__)


def automatic_threads() -> int:
    return max(1, (os.cpu_count() or 1) - RESERVED_CORES)


def saved_forms(settings) -> dict[str, dict]:
    """Each recipe's saved form, with only the fields TrainConfig accepts (the others dropped with a log line)."""
    forms = {}
    for mode, form in (settings.get("train.forms") or {}).items():
        if mode not in MODE_KEYS:
            log.warning("ignoring the saved training form of unknown recipe %r", mode[:40])
            continue
        forms[mode], dropped = usable_form({k: v for k, v in form.items() if k not in PER_RUN}, mode)
        for name, why in dropped.items():
            log.warning("ignoring saved training setting %s of recipe %s: %s", name, mode, why)
    return forms


def arch_label(name: str) -> str:
    """"resnet50 · 25.6M parameters · slow": the name, its size and its speed on the same machine."""
    info = ARCHS[name]
    size = info.summary.rsplit(", ", 1)[-1] if "parameters" in info.summary else "for 32 px images"
    ratio = GFLOPS.get(name, 4.0) / GFLOPS["resnet18"]
    speed = "fastest" if ratio < 0.5 else "fast" if ratio < 1.5 else "medium" if ratio < 2.5 else \
        "slow" if ratio < 5 else "very slow"
    return f"{name} · {size} · {speed}"


class TrainForm(QWidget):
    mode_changed = Signal(str)
    balance_changed = Signal(str)   # the remedy for class imbalance now chosen ("none" on CIFAR-10)
    split_changed = Signal()       # the architecture, image size, validation share or seed (what a health check uses)
    estimate_changed = Signal()    # a setting the time estimate depends on

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.devices: list[tuple[str, str]] = []
        self._wanted_device = "auto"
        self._mode: str | None = None
        self._forms = saved_forms(settings)
        self._build()

    # ---- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 8, 0)
        self.layout_.setSpacing(10)
        mode_box = QGroupBox("What to train")
        ml = QVBoxLayout(mode_box)
        self.mode_combo = QComboBox()
        for key, label, _ in MODES:
            self.mode_combo.addItem(label, key)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        self.mode_help.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows theme changes
        ml.addWidget(self.mode_combo)
        ml.addWidget(self.mode_help)
        self.layout_.addWidget(mode_box)

        model_box = QGroupBox("Model")
        mf = QFormLayout(model_box)
        self.arch_combo = QComboBox()
        for name, info in ARCHS.items():
            self.arch_combo.addItem(arch_label(name), name)
            self.arch_combo.setItemData(self.arch_combo.count() - 1, info.summary, Qt.ItemDataRole.ToolTipRole)
        self.weights_row = WeightsPanel()   # fine-tuning: download the ImageNet weights, or locate a copy
        self.weights_edit = self.weights_row.edit
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Automatic")
        self.name_edit.setToolTip("The name of the model in the registry; a name in use gets a number added")
        mf.addRow(f"{heading('arch')}:", self.arch_combo)
        mf.addRow(f"{heading('pretrained')}:", self.weights_row)
        mf.addRow(f"{heading('name')}:", self.name_edit)
        self.model_form = mf
        self.layout_.addWidget(model_box)

        basic_box = QGroupBox("Training")
        basic = QFormLayout(basic_box)
        self.epochs_spin = QSpinBox(minimum=1, maximum=10000)
        self.epochs_spin.setToolTip("Passes over all the training images; more take longer and usually help, "
                                    "until the model starts memorising them")
        self.estimate = TimeEstimate()
        basic.addRow(f"{heading('epochs')}:", self.epochs_spin)
        basic.addRow("", self.estimate)
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolTip("Batch size, learning rate, optimizer, schedule, augmentation, device …: "
                                        "the recipe's values are a good start")
        basic.addRow(self.advanced_button)
        self.layout_.addWidget(basic_box)

        self.advanced = QGroupBox("Advanced settings")
        hp = QFormLayout(self.advanced)
        self.batch_spin = QSpinBox(minimum=1, maximum=65536)
        self.lr_spin = QDoubleSpinBox(decimals=6, minimum=1e-6, maximum=10.0, singleStep=0.0005)
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItems(list(OPTIMIZERS))
        self.schedule_combo = QComboBox()
        self.schedule_combo.addItems(list(SCHEDULES))
        self.wd_spin = QDoubleSpinBox(decimals=6, minimum=0.0, maximum=1.0, singleStep=0.0001)
        self.smoothing_spin = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.9, singleStep=0.05)
        self.warmup_spin = QDoubleSpinBox(decimals=1, minimum=-0.1, maximum=1000.0, singleStep=0.5)
        self.warmup_spin.setSpecialValueText("Automatic")
        self.freeze_spin = QSpinBox(minimum=0, maximum=1000)
        self.freeze_spin.setToolTip("Train only the new classifier head for this many epochs first")
        self.val_spin = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=0.9, singleStep=0.05)
        self.val_spin.setToolTip("Share of each class held out for validation when the folder has no val/ sub-folder")
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.augment_combo = QComboBox()
        for key, label in AUGMENT_LABELS:
            self.augment_combo.addItem(label, key)
        self.flip_check = QCheckBox("Flips")
        self.flip_check.setToolTip("Random horizontal flips (turn off for digits, text or anything with a handedness)")
        augment_row = QWidget()
        arow = QHBoxLayout(augment_row)
        arow.setContentsMargins(0, 0, 0, 0)
        arow.addWidget(self.augment_combo, 1)
        arow.addWidget(self.flip_check)
        self.balance_combo = QComboBox()
        for key, label in BALANCE_LABELS:
            self.balance_combo.addItem(label, key)
        self.balance_combo.setToolTip(dict(settings())["balance"].help)
        self.balance_combo.currentIndexChanged.connect(lambda: self.balance_changed.emit(self.balance()))
        self.image_size_spin = QSpinBox(minimum=MIN_IMAGE_SIZE - 1, maximum=MAX_IMAGE_SIZE)
        self.image_size_spin.setSpecialValueText("Automatic")
        self.image_size_spin.setSuffix(" px")
        self.image_size_spin.setToolTip("Training input size; automatic uses the architecture's (32 px for "
                                        "resnet18_cifar, 224 px for the ImageNet models)")
        self.precision_combo = QComboBox()
        for key, label in PRECISION_LABELS:
            self.precision_combo.addItem(label, key)
        self.precision_combo.setToolTip("Automatic uses bf16 where the hardware has it (GPUs, recent CPUs), else fp32")
        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic", "auto")
        self.threads_spin = QSpinBox(minimum=0, maximum=1024)
        self.threads_spin.setSpecialValueText(f"Automatic ({automatic_threads()})")
        self.threads_spin.setToolTip(
            "CPU threads for training on the CPU. More threads train faster; fewer leave cores free for other work "
            "(the window stays responsive either way).")
        self.gpus_spin = QSpinBox(minimum=1, maximum=1)
        self.gpus_spin.setToolTip("More than one: torchrun starts one training process per GPU "
                                  "(DistributedDataParallel; the batch size is per GPU)")
        self.gpus_spin.valueChanged.connect(self._gpus_changed)
        self.gpu_count = 0
        self.workers_spin = QSpinBox(minimum=-1, maximum=64)
        self.workers_spin.setSpecialValueText("Automatic")
        for combo in (self.precision_combo, self.device_combo, self.mode_combo, self.arch_combo, self.augment_combo):
            # long entries must not widen the form beyond its column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        rows = [("batch_size", self.batch_spin), ("lr", self.lr_spin), ("optimizer", self.optimizer_combo),
                ("schedule", self.schedule_combo), ("weight_decay", self.wd_spin),
                ("label_smoothing", self.smoothing_spin), ("warmup_epochs", self.warmup_spin),
                ("freeze_backbone_epochs", self.freeze_spin), ("val_split", self.val_spin),
                ("balance", self.balance_combo), ("seed", self.seed_spin), ("augment", augment_row),
                ("image_size", self.image_size_spin), ("precision", self.precision_combo),
                ("device", self.device_combo), ("GPUs", self.gpus_spin), ("threads", self.threads_spin),
                ("workers", self.workers_spin)]
        for key, widget in rows:  # the settings' headings (core), the words the Runs tab's comparison shows too
            hp.addRow(f"{heading(key)}:", widget)
        reset = QPushButton("Reset to recipe defaults")
        reset.clicked.connect(lambda: self._apply(recipe(self.mode())))
        hp.addRow("", reset)
        self.hp_form = hp
        hp.setRowVisible(self.gpus_spin, False)
        self.layout_.addWidget(self.advanced)
        self.layout_.addStretch(1)
        self.advanced_button.toggled.connect(self.show_advanced)
        self.show_advanced(bool(self.settings.get(ADVANCED_SETTING, False)))
        for changed in (self.epochs_spin.valueChanged, self.batch_spin.valueChanged,
                        self.arch_combo.currentIndexChanged, self.image_size_spin.valueChanged,
                        self.device_combo.currentIndexChanged, self.precision_combo.currentIndexChanged):
            changed.connect(lambda *_: self.estimate_changed.emit())
        self.mode_combo.currentIndexChanged.connect(self._mode_chosen)
        for changed in (self.arch_combo.currentIndexChanged, self.image_size_spin.valueChanged,
                        self.val_spin.valueChanged, self.seed_spin.valueChanged):
            changed.connect(lambda *_: self.split_changed.emit())

    def show_advanced(self, show: bool = True) -> None:
        """Open or close the advanced settings (closed at first: data, model, epochs and Start are enough)."""
        self.advanced_button.blockSignals(True)
        self.advanced_button.setChecked(show)
        self.advanced_button.blockSignals(False)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if show else Qt.ArrowType.RightArrow)
        self.advanced.setVisible(show)
        self.settings.set(ADVANCED_SETTING, show)

    def insert_data_panel(self, panel: QWidget, *below: QWidget) -> None:
        """The data panel sits between "What to train" and "Model"; `below` go right under it, in order."""
        for i, widget in enumerate((panel, *below)):
            self.layout_.insertWidget(1 + i, widget)

    def choose_weights(self) -> None:
        self.weights_row.locate()

    # ---- modes ------------------------------------------------------------------------------------
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def balance(self) -> str:
        return self.balance_combo.currentData() if self.mode() != "cifar10" else "none"

    def set_balance(self, remedy: str) -> None:
        """Choose the remedy for class imbalance (shown: the health check's fix opens the advanced settings)."""
        self.show_advanced()
        self.balance_combo.setCurrentIndex(max(0, self.balance_combo.findData(remedy)))

    def set_mode(self, mode: str) -> None:
        """Choose a recipe: "cifar10", "finetune" or "scratch" (MODE_KEYS)."""
        self.mode_combo.setCurrentIndex(MODE_KEYS.index(mode))

    def split(self) -> tuple[float, int]:
        """(validation share, seed): how a folder is split."""
        return self.val_spin.value(), self.seed_spin.value()

    def set_learning_rate(self, lr: float) -> float:
        """Put `lr` in its field (shown); returns what the field holds (rounded to its decimals)."""
        self.show_advanced()
        self.lr_spin.setValue(lr)
        return self.lr_spin.value()

    def set_batch_size(self, size: int) -> int:
        self.show_advanced()
        self.batch_spin.setValue(size)
        return self.batch_spin.value()

    def clear_name(self) -> None:
        """The next run gets its own name."""
        self.name_edit.clear()

    def load_settings(self) -> None:
        mode = self.settings.get("train.mode")
        index = MODE_KEYS.index(mode) if mode in MODE_KEYS else 0
        if index == self.mode_combo.currentIndex():
            self._mode_chosen()
        else:
            self.mode_combo.setCurrentIndex(index)

    def _mode_chosen(self) -> None:
        if self._mode is not None:
            self._forms[self._mode] = self.values()  # keep this recipe's edits for when it comes back
        mode = self.mode()
        self._mode = mode
        self.mode_help.setText(dict((k, h) for k, _, h in MODES)[mode])
        cfg = recipe(mode)
        saved = self._forms.get(mode)
        if saved:  # fields TrainConfig accepted one by one (saved_forms)
            cfg = TrainConfig.from_dict({**cfg.to_dict(), **saved, "recipe": mode})
        self._apply(cfg)
        self.mode_changed.emit(mode)
        self.balance_changed.emit(self.balance())

    def _apply(self, cfg: TrainConfig) -> None:
        mode = self.mode()
        for i in range(self.arch_combo.count()):  # only sensible architectures per mode
            allowed = not (mode == "finetune" and ARCHS[self.arch_combo.itemData(i)].cifar_stem)
            self.arch_combo.model().item(i).setEnabled(allowed)
        self.arch_combo.setCurrentIndex(max(0, self.arch_combo.findData(cfg.arch)))
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
        self.seed_spin.setValue(min(cfg.seed, self.seed_spin.maximum()))  # the CLI allows seeds up to 2**63-1
        self.augment_combo.setCurrentIndex(max(0, self.augment_combo.findData(cfg.augment)))
        self.balance_combo.setCurrentIndex(max(0, self.balance_combo.findData(cfg.balance)))
        self.flip_check.setChecked(cfg.hflip)
        self.image_size_spin.setValue(cfg.image_size or self.image_size_spin.minimum())
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(cfg.precision)))
        self._wanted_device = cfg.device
        self._select_device()
        self.threads_spin.setValue(cfg.threads or 0)
        self.workers_spin.setValue(-1 if cfg.workers is None else cfg.workers)
        self.model_form.setRowVisible(self.weights_row, mode == "finetune")
        self.hp_form.setRowVisible(self.freeze_spin, mode == "finetune")
        self.hp_form.setRowVisible(self.val_spin, mode != "cifar10")
        self.hp_form.setRowVisible(self.balance_combo, mode != "cifar10")  # CIFAR-10's classes are balanced
        self.hp_form.setRowVisible(self.workers_spin, mode != "cifar10")

    # ---- devices ----------------------------------------------------------------------------------
    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """The devices PyTorch found: list them, and select the saved choice again."""
        self.devices = devices
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem("Automatic (best available)", "auto")
        for dev, label in devices:
            self.device_combo.addItem(label, dev)
        self.device_combo.blockSignals(False)
        self._select_device()

    def set_gpu_count(self, count: int) -> None:
        """How many CUDA GPUs PyTorch sees: with more than one, the form offers GPUs: 1 … count."""
        self.gpu_count = max(0, int(count))
        several = self.gpu_count > 1
        self.gpus_spin.setMaximum(max(1, self.gpu_count))
        self.gpus_spin.setSuffix(f" of {self.gpu_count}" if several else "")
        saved = self.settings.get("train.gpus", 1)
        self.gpus_spin.setValue(min(max(1, saved), max(1, self.gpu_count)))
        self.hp_form.setRowVisible(self.gpus_spin, several)
        self._gpus_changed()

    def gpus(self) -> int:
        """GPUs to train on: more than one means a torchrun child process."""
        return self.gpus_spin.value() if self.gpu_count > 1 else 1

    def _gpus_changed(self) -> None:
        several = self.gpus() > 1
        self.device_combo.setEnabled(not several)
        self.device_combo.setToolTip("With several GPUs, each training process uses its own GPU" if several else "")

    def _select_device(self) -> None:
        index = self.device_combo.findData(self._wanted_device)
        self.device_combo.setCurrentIndex(index if index >= 0 else 0)

    def device(self) -> str:
        if self.device_combo.findData(self._wanted_device) < 0:
            return self._wanted_device  # not listed yet (PyTorch loading): the saved choice stands
        return self.device_combo.currentData() or "auto"

    def on_cpu(self, device: str) -> bool:
        return device == "cpu" or (device == "auto" and all(d == "cpu" for d, _ in self.devices))

    def threads_for(self, device: str) -> int | None:
        """The CPU threads a run uses: the field's value, or automatic on the CPU (None: torch's default)."""
        if self.threads_spin.value() > 0:
            return self.threads_spin.value()
        return automatic_threads() if self.on_cpu(device) else None

    # ---- values -----------------------------------------------------------------------------------
    def values(self) -> dict:
        """The form as TrainConfig fields (threads: the field's own value, None for automatic)."""
        mode = self.mode()
        self._wanted_device = self.device()
        return {
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
            "augment": self.augment_combo.currentData(),
            "balance": self.balance(),
            "hflip": self.flip_check.isChecked(),
            "image_size": None if self.image_size_spin.value() < MIN_IMAGE_SIZE else self.image_size_spin.value(),
            "precision": self.precision_combo.currentData(),
            "device": self._wanted_device,
            "threads": self.threads_spin.value() or None,
            "workers": None if self.workers_spin.value() < 0 else self.workers_spin.value(),
        }

    def config(self, data: str | None) -> TrainConfig:
        values = self.values()
        values["threads"] = self.threads_for(values["device"])
        return TrainConfig.from_dict({**recipe(self.mode()).to_dict(), **values, "data": data or None,
                                      "name": self.name_edit.text().strip() or None})

    def save_settings(self) -> None:
        self._forms[self.mode()] = self.values()
        self.settings.set("train.forms", dict(self._forms))
        self.settings.set("train.mode", self.mode())
        if self.gpu_count > 1:
            self.settings.set("train.gpus", self.gpus_spin.value())
