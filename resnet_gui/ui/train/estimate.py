"""Before Start: how long the run will take on this machine. Taken from earlier runs of the same architecture,
image size and device (the images/s they measured), or measured on request with a few training steps of the
chosen model on random images; then epochs x (training images + validation images / 3) / images per second
(evaluating is a forward pass only, about three times faster than a training step)."""
from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from resnet_gui.core.models.archs import ARCHS
from resnet_gui.text import duration

from ..common.widgets import plain_label
from ..common.workers import TaskSlot

MEASURE_STEPS = 3
MEASURE_BATCH = 32      # at most: a speed test must not need more memory than the run itself
EVAL_SPEEDUP = 3.0      # validation images go about this much faster than training ones


@dataclass(frozen=True)
class Speed:
    arch: str
    image_size: int
    device: str           # as configured ("auto", "cpu", "cuda:0")
    images_per_s: float
    source: str           # where the figure comes from, in words ("run “digits-2”", "measured just now")


def input_size(config: dict) -> int:
    arch = ARCHS.get(config.get("arch") or "")
    return int(config.get("image_size") or (arch.input_size if arch else 224))


def earlier_speeds_task(report, stop) -> list[Speed]:
    """The training speed of every earlier run that recorded one, newest first."""
    from resnet_gui.core.train.runs import list_run_infos

    speeds = []
    for info in list_run_infos():
        rates = [r["images_per_s"] for r in info.history
                 if isinstance(r.get("images_per_s"), (int, float)) and r["images_per_s"] > 0]
        if rates and info.config.get("arch"):
            speeds.append(Speed(info.config["arch"], input_size(info.config), str(info.config.get("device", "auto")),
                                float(median(rates)), f"run “{info.name}”"))
    return speeds


def measure_task(report, stop, config: dict) -> Speed:
    """A few training steps of the configured model on random images, on its device and precision."""
    import time

    import torch

    from resnet_gui.core.devices import cpu_has_native_bf16, resolve_device
    from resnet_gui.core.models.build import new_model

    device = resolve_device(config.get("device") or "auto")
    size, batch = input_size(config), max(2, min(int(config.get("batch_size") or MEASURE_BATCH), MEASURE_BATCH))
    precision = config.get("precision") or "auto"
    bf16 = precision == "bf16" or (precision == "auto" and (
        torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_has_native_bf16()))
    model = new_model(config["arch"], 10).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # the first step allocates and picks kernels: not timed
    start = time.perf_counter()
    for i in range(MEASURE_STEPS):
        if stop.is_set():
            break
        step()
        report(("Measuring", i + 1, MEASURE_STEPS))
    done = max(1, i + 1)
    rate = batch * done / max(time.perf_counter() - start, 1e-9)
    return Speed(config["arch"], size, str(config.get("device") or "auto"), rate, "measured just now")


def run_seconds(speed: Speed, epochs: int, train_images: int, val_images: int) -> float:
    return epochs * (train_images + val_images / EVAL_SPEEDUP) / speed.images_per_s


class TimeEstimate(QWidget):
    """One line under Epochs: "About 12 min on this machine (resnet18 at 224 px: 85 images/s in run “a”)", with
    a Measure button; "Unknown" until a run or a measurement says. The form calls update_for() on changes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = plain_label()
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip("Time a few training steps of this model on this machine (seconds; "
                                       "nothing is saved)")
        self.measure_button.clicked.connect(self.measure)
        row.addWidget(self.label, 1)
        row.addWidget(self.measure_button)
        self.speeds: list[Speed] = []
        self._config: dict | None = None
        self._counts = (0, 0)
        self._earlier = TaskSlot("earlier-speeds", self)
        self._measuring = TaskSlot("speed-test", self)
        self._measuring.busy_changed.connect(lambda busy: self.measure_button.setEnabled(not busy))

    def refresh(self) -> None:
        """Read the earlier runs' speeds again (after a run, or once PyTorch is ready)."""
        self._earlier.start(earlier_speeds_task, on_done=self._speeds_read)

    def _speeds_read(self, speeds: list[Speed]) -> None:
        measured = [s for s in self.speeds if s.source == "measured just now"]
        self.speeds = measured + list(speeds)
        self._show()

    def update_for(self, config: dict, train_images: int, val_images: int) -> None:
        self._config, self._counts = dict(config), (train_images, val_images)
        self._show()

    def matching(self) -> Speed | None:
        if self._config is None:
            return None
        want = (self._config.get("arch"), input_size(self._config), str(self._config.get("device") or "auto"))
        return next((s for s in self.speeds if (s.arch, s.image_size, s.device) == want), None)

    def seconds(self) -> float | None:
        speed = self.matching()
        if speed is None or self._config is None or not self._counts[0]:
            return None
        return run_seconds(speed, int(self._config.get("epochs") or 1), *self._counts)

    def _show(self) -> None:
        speed, seconds = self.matching(), self.seconds()
        if self._config is None or not self._counts[0]:
            self.label.setText("Time: estimated once the data is found")
        elif seconds is None:
            self.label.setText("Time: unknown on this machine until measured (or after a first run)")
        else:
            self.label.setText(f"About {duration(seconds)} on this machine ({speed.arch} at {speed.image_size} px: "
                               f"{speed.images_per_s:,.0f} images/s, {speed.source})")

    def measure(self) -> None:
        if self._config is None or self._measuring.busy():
            return
        self.label.setText("Measuring a few training steps…")
        self._measuring.start(measure_task, self._config, on_done=self._measured, on_failed=self._measure_failed)

    def _measured(self, speed: Speed) -> None:
        self.speeds = [speed] + [s for s in self.speeds if s.source != "measured just now"
                                 or (s.arch, s.image_size, s.device) != (speed.arch, speed.image_size, speed.device)]
        self._show()

    def _measure_failed(self, failure) -> None:
        self.label.setText(f"Could not measure: {failure.message}")

    def cancel(self) -> None:
        self._earlier.cancel()
        self._measuring.cancel()
