"""The Train tab's dataset health check kept about the data and settings on screen: a scanned class folder is
checked (unreadable files, duplicates, leakage between the splits, images smaller than the model's input) in a
worker; a change of the architecture, image size, validation share or seed checks it again after a pause (one
check, not one per value spun through); CIFAR-10 is never checked. What the check's list decides (files left out,
files given another class) goes into a run's configuration (run_choices)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from resnet_gui.text import plural

RECHECK_MS = 400  # pause after a setting the health check depends on changes


class HealthCheck(QObject):
    def __init__(self, panel, form, config: Callable, is_training: Callable[[], bool], parent=None):
        """panel: the DataHealthPanel; form: the TrainForm; config(): the run's TrainConfig as on screen."""
        super().__init__(parent)
        self.panel, self.form = panel, form
        self._config, self._is_training = config, is_training
        self.last_scan = None   # the folder scan the panel's check is about
        self._recheck = QTimer(self, singleShot=True, interval=RECHECK_MS)
        self._recheck.timeout.connect(self._recheck_now)
        form.balance_changed.connect(panel.set_balance)
        panel.balance_requested.connect(form.set_balance)
        panel.set_balance(form.balance())
        form.split_changed.connect(self._settings_changed)
        form.mode_changed.connect(self._mode_changed)

    def _mode_changed(self, mode: str) -> None:
        self.panel.setVisible(mode != "cifar10")
        if mode == "cifar10":
            self.panel.clear()

    def scanned(self, scan) -> None:
        """A folder was scanned: check its images in a worker (not CIFAR-10's)."""
        self.last_scan = scan
        if self.form.mode() == "cifar10":
            return
        cfg = self._config()
        self.panel.check(scan.folder, cfg.val_split, cfg.seed, cfg.arch, cfg.image_size)

    def scan_failed(self, _failure=None) -> None:
        self.last_scan = None
        self.panel.clear()

    def _settings_changed(self) -> None:
        if self.last_scan is not None:
            self._recheck.start()

    def _recheck_now(self) -> None:
        """The architecture, image size, validation share or seed changed: the last result is about other
        settings (e.g. "smaller than the model's input (224 px)" after switching to a 32 px model)."""
        if self.last_scan is not None and not self._is_training():
            self.scanned(self.last_scan)  # which leaves CIFAR-10 alone

    def run_choices(self, cfg, config: dict) -> list[str]:
        """Into a run's `config` (for TrainConfig `cfg`): the files the check's list leaves out and those given
        another class (the folder itself is never touched). Returns what the run's log says about them."""
        if cfg.dataset != "folder":
            return []
        config["exclude"] = self.panel.excluded_paths(cfg.data)
        config["relabel"] = self.panel.relabel_map(cfg.data) or None
        lines = []
        if config["exclude"]:
            lines.append(f"Leaving out {plural(len(config['exclude']), 'file')} ticked in the dataset health list.")
        if config["relabel"]:
            lines.append(f"Training {plural(len(config['relabel']), 'file')} as the class chosen in the label "
                         "mistakes list.")
        return lines
