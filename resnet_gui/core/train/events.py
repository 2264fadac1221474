"""Training events: small frozen dataclasses, one per kind, with `to_json()` for `train --json`.

The engine calls `on_event(event)` with these objects; the GUI, the CLI, the self-test, the
benchmarks and the scripts read their attributes (a renamed field fails where it is read, at import
or type-check time, not as a KeyError in a worker thread). `to_json()` gives {"event": kind, ...}.
Accuracies are fractions in [0, 1]; times are seconds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from resnet_gui.text import learning_rate

from ..errors import Remedy

CLOSE = 3.0   # a current learning rate within this factor of the finder's suggestion is "close to it"


def _plain(value: Any) -> Any:
    """JSON-safe: non-finite floats become null (bare NaN is not valid JSON), tuples become lists."""
    if isinstance(value, Remedy):
        return _plain(value.to_json())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class TrainEvent:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}


@dataclass(frozen=True)
class Status(TrainEvent):
    """A phase begins ("Loading CIFAR-10", "Scanning …")."""
    kind: ClassVar[str] = "status"
    message: str


@dataclass(frozen=True)
class Prepare(TrainEvent):
    """Data preparation or download progress (total 0: unknown)."""
    kind: ClassVar[str] = "prepare"
    message: str
    done: int
    total: int


@dataclass(frozen=True)
class DatasetSummary(TrainEvent):
    """What the run trains and validates on (names, counts, split, data path)."""
    kind: ClassVar[str] = "dataset"
    description: dict


@dataclass(frozen=True)
class Warning(TrainEvent):  # noqa: A001 - the event's name in --json output
    """Something the user should know: class imbalance, skipped images, …"""
    kind: ClassVar[str] = "warning"
    message: str
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Started(TrainEvent):
    kind: ClassVar[str] = "started"
    run_name: str
    device: str
    precision: str
    epochs: int
    start_epoch: int
    steps_per_epoch: int
    train_images: int
    val_images: int
    class_names: tuple[str, ...]
    config: dict
    data_path: str
    history: tuple[dict, ...] = ()
    world_size: int = 1


@dataclass(frozen=True)
class Batch(TrainEvent):
    """Throttled to about 20 per second; `losses` carries every (global step, loss) since the last one."""
    kind: ClassVar[str] = "batch"
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    losses: tuple[tuple[int, float], ...]
    lr: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Epoch(TrainEvent):
    kind: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    images_per_s: float
    epoch_time_s: float
    eta_s: float
    best: bool


@dataclass(frozen=True)
class CheckpointSaved(TrainEvent):
    kind: ClassVar[str] = "checkpoint"
    which: str               # "best" (into the registry) or "last" (the resumable run state)
    path: str
    epoch: int
    name: str | None = None  # registry name, for "best"
    val_accuracy: float | None = None


@dataclass(frozen=True)
class Ended(TrainEvent):
    """The last event of every run; `status` is "finished", "cancelled" or "failed" (also its JSON name). The
    message names no command-line option: `remedy` says what to do (core.errors.Remedy, {"kind", "value"} in
    JSON)."""
    status: str
    message: str
    remedy: Remedy | None = None
    run_name: str | None = None
    best_name: str | None = None
    best_path: str | None = None
    best_val_accuracy: float | None = None
    last_path: str | None = None
    epochs_done: int = 0
    warnings: tuple[str, ...] = ()
    balanced_accuracy: float | None = None   # the best model's, measured at the end of a finished run
    balance: str = "none"                    # the remedy for class imbalance it was trained with

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.status


@dataclass(frozen=True)
class LrStep(TrainEvent):
    """The learning-rate range test's progress: the points (rate, smoothed loss) measured since the last LrStep
    (reports are throttled; together they are the whole curve), `step` of at most `steps` (it stops early once
    the loss diverges), and the time the remaining steps would take at the pace so far (None before it is known)."""
    kind: ClassVar[str] = "lr_step"
    step: int
    steps: int
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    eta_s: float | None = None


@dataclass(frozen=True)
class LrFound(TrainEvent):
    """The learning-rate range test's result: the suggestion and the curve (smoothed loss per rate). lr is None
    when the curve shows no clear descent (method says so): any rate would be a guess."""
    kind: ClassVar[str] = "lr_found"
    lr: float | None
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    method: str = "steepest descent of the smoothed loss"
    meaning: str = ""   # what the suggestion is, in words ("where the smoothed loss fell fastest as the rate rose")

    def explained(self, current: float | None = None) -> str:
        """What the suggestion means, and where the current rate (the form's, or the recipe's) lies on the curve:
        past the loss's lowest point (likely to diverge), higher where the loss still fell, close, or lower (slow).
        Empty without a suggestion."""
        if self.lr is None or not self.lrs:
            return ""
        lr = float(self.lr)
        text = f"Suggested learning rate {learning_rate(lr)}" + (f": {self.meaning}." if self.meaning else ".")
        if current is None or not current > 0:
            return text
        lowest = self.lrs[min(range(len(self.losses)), key=self.losses.__getitem__)]
        now = f"The current rate, {learning_rate(current)},"
        if current > lowest:
            return (f"{text} {now} lies past the curve's lowest point ({learning_rate(lowest)}), where the loss rose "
                    f"again: training at it may diverge; the suggestion is {current / lr:.0f}x lower.")
        if current > CLOSE * lr:
            return (f"{text} {now} is {current / lr:.0f}x higher, where the loss still fell: it can train faster "
                    "(more safely with a warm-up); the suggestion is the cautious choice.")
        if current * CLOSE < lr:
            return (f"{text} {now} is {lr / current:.0f}x lower, where the loss fell slowly: training at it would "
                    "be slow.")
        return f"{text} {now} is close to it."


@dataclass
class TrainResult:
    """What train() returns (the same facts as its Ended event, plus the history)."""
    status: str  # "finished", "cancelled" or "failed"
    message: str
    remedy: Remedy | None = None   # what to do next (each screen words it: core.errors.with_remedy for the CLI)
    run_name: str | None = None
    best_name: str | None = None
    best_path: str | None = None
    best_val_accuracy: float | None = None
    last_path: str | None = None
    epochs_done: int = 0
    history: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    balanced_accuracy: float | None = None
    balance: str = "none"

    def event(self) -> Ended:
        return Ended(status=self.status, message=self.message, remedy=self.remedy, run_name=self.run_name,
                     best_name=self.best_name,
                     best_path=self.best_path, best_val_accuracy=self.best_val_accuracy, last_path=self.last_path,
                     epochs_done=self.epochs_done, warnings=tuple(self.warnings),
                     balanced_accuracy=self.balanced_accuracy, balance=self.balance)


EVENT_TYPES = (Status, Prepare, DatasetSummary, Warning, Started, Batch, Epoch, CheckpointSaved, Ended, LrStep,
               LrFound)
