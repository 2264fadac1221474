"""The training monitor: the run's result and warnings, progress with epoch and batch, speed, ETA, best
validation accuracy, live curves and the log. It only displays the typed events it is given."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from resnet_gui.core.train import events as E
from resnet_gui.text import duration, plural, sentence

from ..common.failures import Failure, window_text
from ..common.lazy import LazyPage
from ..common.widgets import Banner, LogView

RESULT_KINDS = {"finished": "success", "cancelled": "info", "failed": "error"}
RESULT_WORDS = {"finished": "Finished", "cancelled": "Stopped", "failed": "Failed"}


def _training_plots():
    from .live_plots import TrainingPlots

    return TrainingPlots()


class TrainingMonitor(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.banner = Banner()               # the run's outcome
        self.warnings_banner = Banner()      # what the run warned about (stays after the outcome)
        layout.addWidget(self.banner)
        layout.addWidget(self.warnings_banner)
        self.progress = QProgressBar()
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        stats = QHBoxLayout()
        self.epoch_label = QLabel("Epoch –")
        self.speed_label = QLabel("– images/s")
        self.eta_label = QLabel("ETA –")
        self.acc_label = QLabel("Best val. accuracy –")
        for w in (self.epoch_label, self.speed_label, self.eta_label, self.acc_label):
            w.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            stats.addWidget(w)
        layout.addLayout(stats)
        self.plots_page = LazyPage(_training_plots)  # made when first shown: pyqtgraph stays off the start-up path
        layout.addWidget(self.plots_page, 3)
        self.log = LogView("Dataset summary, warnings and one line per epoch appear here.")
        layout.addWidget(self.log, 1)
        self.warnings: list[str] = []

    @property
    def plots(self):
        """The live curves (made on first use)."""
        return self.plots_page.widget()

    def _clear_plots(self) -> None:
        if (plots := self.plots_page.made_widget()) is not None:  # curves never made have nothing to clear
            plots.clear()

    # ---- a run ------------------------------------------------------------------------------------
    def begin(self, message: str) -> None:
        self.banner.clear_message()
        self.warnings_banner.clear_message()
        self.warnings = []
        self.log.follow()  # a new run opens on its own lines, even if the last one was scrolled up
        self.log.append_line(f"— {message}")
        self._clear_plots()
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing…")
        self.epoch_label.setText("Epoch –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("ETA –")
        self._set_best(None)

    def reset(self) -> None:
        """Back to "Not started": the last run's outcome, warnings, figures, curves and log go (another recipe)."""
        self.banner.clear_message()
        self.warnings_banner.clear_message()
        self.warnings = []
        self.log.clear()
        self.log.follow()
        self._clear_plots()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.epoch_label.setText("Epoch –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("ETA –")
        self._set_best(None)

    def rename_model(self, old: str, new: str) -> None:
        """The model the outcome names is called `new` now."""
        if f"“{old}”" in self.banner.text():
            self.banner.set_text(self.banner.text().replace(f"“{old}”", f"“{new}”"))

    def say(self, text: str, kind: str = "error", actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        """A sentence about the run or its settings where its outcome goes (kind: error, warning, info)."""
        self.banner.show_message(text, kind, actions)

    def clear_error(self) -> None:
        """The problem the error named is gone (other data or settings now)."""
        if self.banner.kind() == "error":
            self.banner.clear_message()

    def log_line(self, text: str) -> None:
        self.log.append_line(text)

    def stopping(self) -> None:
        self.progress.setFormat("Stopping after this batch…")

    def _set_best(self, accuracy: float | None) -> None:
        self.acc_label.setText("Best val. accuracy –" if accuracy is None else f"Best val. accuracy {accuracy:.1%}")

    def on_event(self, ev) -> None:
        if isinstance(ev, E.Batch):
            total = ev.epochs * ev.steps
            self.progress.setRange(0, total)
            self.progress.setValue((ev.epoch - 1) * ev.steps + ev.step)
            self.progress.setFormat(f"Epoch {ev.epoch} of {ev.epochs} · batch {ev.step} of {ev.steps} · %p%")
            self.epoch_label.setText(f"Epoch {ev.epoch} of {ev.epochs} · loss {ev.loss:.3f}")
            self.speed_label.setText(f"{ev.images_per_s:.0f} images/s")
            self.eta_label.setText(f"ETA {duration(ev.eta_s)}")
            self.plots.add_batches(ev.losses)
        elif isinstance(ev, E.Epoch):
            self.plots.add_epoch(ev)
            if ev.best:
                self._set_best(ev.val_accuracy)
            self.eta_label.setText(f"ETA {duration(ev.eta_s)}")
            self.log.append_line(
                f"epoch {ev.epoch}/{ev.epochs}: training loss {ev.train_loss:.4f}, accuracy {ev.train_accuracy:.1%}"
                f" | validation loss {ev.val_loss:.4f}, accuracy {ev.val_accuracy:.1%} | {ev.images_per_s:.0f} "
                f"images/s, {ev.epoch_time_s:.0f} s" + ("  ★ best" if ev.best else ""))
        elif isinstance(ev, E.Started):
            self._started(ev)
        elif isinstance(ev, E.DatasetSummary):
            d = ev.description
            source = f" ({d['val_source']})" if d.get("val_source") else ""
            self.log.append_line(f"Dataset {d.get('name') or 'folder'}: "
                                 f"{plural(d.get('train_images') or 0, 'training image')}, "
                                 f"{plural(d.get('val_images') or 0, 'validation image')}{source}.")
        elif isinstance(ev, E.Warning):
            self.add_warning(ev.message)
        elif isinstance(ev, (E.Status, E.Prepare)):
            if isinstance(ev, E.Prepare) and ev.total:
                self.progress.setRange(0, ev.total)
                self.progress.setValue(ev.done)
            else:
                self.progress.setRange(0, 0)
            self.progress.setFormat(f"{ev.message}…")
            if isinstance(ev, E.Status):
                self.log.append_line(ev.message + "…")
        elif isinstance(ev, E.CheckpointSaved) and ev.which == "best":
            self.log.append_line(f"Saved the best model so far as “{ev.name}” (validation accuracy "
                                 f"{ev.val_accuracy:.1%}).")

    def _started(self, ev: E.Started) -> None:
        self.plots.start(ev.steps_per_epoch, ev.history, epochs=ev.epochs)
        self.progress.setRange(0, ev.epochs * ev.steps_per_epoch)
        self.progress.setValue(ev.start_epoch * ev.steps_per_epoch)
        earlier = [h.get("val_accuracy") for h in ev.history if isinstance(h.get("val_accuracy"), (int, float))]
        self._set_best(max(earlier) if earlier else None)  # a resumed run's best so far
        resumed = f", resuming after epoch {ev.start_epoch}" if ev.start_epoch else ""
        self.log.append_line(f"Training {ev.config['arch']} as “{ev.run_name}” on {ev.device} ({ev.precision}): "
                             f"{plural(ev.epochs, 'epoch')} of {plural(ev.steps_per_epoch, 'batch', 'batches')}"
                             f"{resumed}.")

    def add_warning(self, message: str) -> None:
        text = sentence(message)
        self.log.append_line(f"⚠ {text}")
        if text not in self.warnings:
            self.warnings.append(text)
        self.warnings_banner.show_message("\n".join(self.warnings), "warning")

    def on_result(self, result, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        if result.best_val_accuracy is not None:
            self._set_best(result.best_val_accuracy)
        text = window_text(result.message, result.remedy)
        kind = RESULT_KINDS[result.status]
        verdicts = [sentence(w) for w in getattr(result, "warnings", ()) or () if str(w).strip()]
        if result.status == "finished" and result.best_name and verdicts:
            # the honest verdict: a finished run whose figures mislead is not a green success
            kind = "warning"
            text = (f"Finished, but read this before trusting “{result.best_name}” "
                    f"({result.best_val_accuracy:.1%} validation accuracy{_remedy(result)}):\n"
                    + "\n".join(f"• {v}" for v in verdicts))
        elif result.status == "finished" and result.best_name:
            text = (f"Done: “{result.best_name}” reached {result.best_val_accuracy:.1%} validation accuracy"
                    f"{_remedy(result)}. It is in the Models tab and in the Predict tab's model list.")
        elif result.status == "cancelled" and result.epochs_done and result.best_name:
            text = (f"Stopped after {plural(result.epochs_done, 'epoch')}; the best model “{result.best_name}” "
                    f"({result.best_val_accuracy:.1%}) is saved. Use Resume to continue.")
        elif verdicts:  # a stopped or failed run's verdicts go with the other warnings
            for warning in verdicts:
                if warning not in self.warnings:
                    self.add_warning(warning)
        self.banner.show_message(text, kind, actions)
        self.log.append_line(("✗ " if result.status == "failed" else "— ") + text)
        self.progress.setFormat(RESULT_WORDS[result.status])
        self.eta_label.setText("ETA –")
        if result.status != "finished":
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def on_failed(self, failure: Failure, actions: Sequence[tuple[str, Callable[[], None]]] = ()) -> None:
        self.banner.show_message(failure.message, "error", actions)
        self.log.append_line(f"✗ {failure.message}")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Failed")


def _remedy(result) -> str:
    """", balanced accuracy 88.0% with the weighted-loss remedy for class imbalance" for a remedied run."""
    balance, balanced = getattr(result, "balance", "none"), getattr(result, "balanced_accuracy", None)
    if balance == "none" or balanced is None:
        return ""
    return f", balanced accuracy {balanced:.1%} with the {balance} remedy for class imbalance"
