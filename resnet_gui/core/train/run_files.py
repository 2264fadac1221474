"""What one run folder holds (runs/<run name>/), read into a RunInfo: its resumable state (last.pth, see
train/state.py) or, once that was removed, its summary.json; its size; how long it trained. Never raises for a
bad run: a state or summary that cannot be read, or a run folder that is a symbolic link, gives a RunInfo with
status UNREADABLE and the reason in `error`, so one bad run never hides the others. runs.py lists, shows,
compares and frees runs with it.

Duration: the sum of the epochs' times recorded in the history (training time per epoch; validation is
included only when the history records it), or, for runs without them, the span between the oldest and
the newest time found on the run folder's files (TensorBoard event files carry their creation time in
their names; otherwise modification times). `duration_source` says which ("history" or "files").
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, RegistryError, ResnetGuiError, TrainingError
from ..jsonsafe import TooLarge, finite_fraction, to_plain
from ..names import validate_name

log = logging.getLogger(__name__)

STATE_FILE = "last.pth"            # train/state.py's STATE_FILE (kept equal; checked by the tests)
SUMMARY_FILE = "summary.json"
SUMMARY_FORMAT = "resnet-gui-run-summary"
SUMMARY_VERSION = 1
MAX_SUMMARY_BYTES = 8 * 2**20      # a summary of 10,000 epochs is under 2 MB
MAX_WALK_DEPTH = 32                # disk use: deeper folders are not counted (no run writes them)

FINISHED = "finished"              # all configured epochs completed
UNFINISHED = "unfinished"          # stopped, or failed, before its last epoch: resumable while its state exists
NO_STATE = "no state"              # a folder without a state or summary: ended before its first epoch
UNREADABLE = "unreadable"          # the state or summary cannot be read (see `error`)
STATUSES = (FINISHED, UNFINISHED, NO_STATE, UNREADABLE)

# The hyperparameters shown next to a run (the full configuration is in `config`).
KEY_HYPERPARAMETERS = ("recipe", "pretrained", "optimizer", "lr", "batch_size", "schedule", "warmup_epochs",
                       "weight_decay", "label_smoothing", "augment", "hflip", "image_size",
                       "freeze_backbone_epochs", "seed", "world_size")
_EVENT_FILE = re.compile(r"^events\.out\.tfevents\.(\d{9,11})\.")


@dataclass
class RunInfo:
    """One run folder. Fields that an unreadable run cannot know are None."""
    name: str
    path: str                                   # the run folder
    status: str                                 # one of STATUSES
    disk_bytes: int                             # everything in the run folder
    state_bytes: int                            # the resumable state (0 when there is none)
    modified: float                             # newest modification time in the folder (Unix time)
    has_state: bool                             # last.pth exists: the run can be resumed
    error: str | None = None
    arch: str | None = None
    dataset: str | None = None                  # the dataset's name (CIFAR-10, or the folder's name)
    epoch: int | None = None                    # epochs completed
    epochs: int | None = None                   # epochs configured
    best_val_accuracy: float | None = None
    best_name: str | None = None                # the registry model holding the best epoch
    duration_s: float | None = None
    duration_source: str | None = None          # "history" or "files" (see the module docstring)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    dataset_details: dict[str, Any] = field(default_factory=dict)
    state_removed: str | None = None            # when the state was removed (ISO time), from the summary

    @property
    def resumable(self) -> bool:
        return self.has_state and self.status == UNFINISHED

    @property
    def finished(self) -> bool:
        """Every configured epoch completed (it can still be trained for more epochs while it has a state)."""
        return self.status == FINISHED

    def to_json(self, *, history: bool = True) -> dict[str, Any]:
        """Plain JSON values (the CLI's --json, the GUI); history=False leaves out the per-epoch rows."""
        out = asdict(self)
        out["resumable"] = self.resumable
        if not history:
            del out["history"]
        return out


def _walk(folder: Path) -> tuple[int, float, list[Path]]:
    """Bytes of all regular files below `folder` (links not followed), the newest modification time, and the
    TensorBoard event files."""
    total, newest, events = 0, 0.0, []
    stack = [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth < MAX_WALK_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
                continue
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
            newest = max(newest, st.st_mtime)
            if _EVENT_FILE.match(entry.name):
                events.append(Path(entry.path))
    return total, newest, events


def _file_duration(folder: Path, newest: float, events: list[Path]) -> float | None:
    """The span between the oldest and newest times on the folder's files (see the module docstring)."""
    starts = []
    for path in events:
        match = _EVENT_FILE.match(path.name)
        if match:
            starts.append(float(match.group(1)))
    try:
        starts.extend(p.stat().st_mtime for p in folder.iterdir() if p.is_file() and not p.is_symlink())
    except OSError:
        pass
    if not starts or newest <= 0:
        return None
    span = newest - min(starts)
    return span if span >= 1.0 else None


def _history_duration(history: list[dict]) -> float | None:
    """The sum of the per-epoch times in the history, or None when any epoch lacks one."""
    total = 0.0
    for row in history:
        value = row.get("epoch_time_s")
        if not _number(value):
            value = row.get("train_time_s")
            if not _number(value):
                return None
            extra = row.get("eval_time_s")
            value = value + (extra if _number(extra) else 0.0)
        total += value
    return total if history else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _dataset_name(config: dict, dataset: dict) -> str | None:
    name = dataset.get("name") if isinstance(dataset, dict) else None
    if isinstance(name, str) and name:
        return name
    if config.get("dataset") == "cifar10":
        return "CIFAR-10"
    data = config.get("data")
    return Path(data).name if isinstance(data, str) and data else None


def _fill(info: RunInfo, obj: dict, config: dict, history: list[dict]) -> None:
    """The fields a state and a summary share, from their (already validated) dictionary and history. The run
    keeps its folder's name (what the commands take), even for a state copied from another run's folder."""
    info.config = config
    info.arch = config.get("arch")
    info.hyperparameters = {k: config.get(k) for k in KEY_HYPERPARAMETERS if k in config}
    info.epochs = config.get("epochs")
    info.epoch = obj["epoch"]
    info.best_val_accuracy = finite_fraction(obj.get("best_val_accuracy"))
    best_name = obj.get("best_name")
    try:
        info.best_name = validate_name(best_name) if isinstance(best_name, str) else None
    except RegistryError:
        info.best_name = None
    info.history = history
    dataset = to_plain(obj.get("dataset")) if isinstance(obj.get("dataset"), dict) else {}
    info.dataset_details = dataset
    info.dataset = _dataset_name(config, dataset)
    info.status = FINISHED if info.epochs is not None and info.epoch >= info.epochs else UNFINISHED


def _read_state(path: Path, info: RunInfo) -> None:
    from ..models.safe_load import safe_torch_load
    from .config import shown_value
    from .state import _bad, _config, _epoch, _header, _run_name, valid_history

    obj = _header(safe_torch_load(path, mmap=True), path)
    config = _config(obj, path)
    _epoch(obj, path, config.epochs)
    try:
        plain = {k: to_plain(obj.get(k)) for k in ("epoch", "best_val_accuracy", "best_name", "dataset")}
        history = valid_history(obj.get("history") or [])
    except TooLarge as exc:
        raise TrainingError(f"{path}: its metadata is too large ({exc}); this is not a normal training state") from None
    except ValueError as exc:
        raise _bad(path, str(exc)) from None
    best = obj.get("best_val_accuracy")
    if best is not None and finite_fraction(best) is None:
        raise _bad(path, f"best validation accuracy {shown_value(best)}")
    _run_name(obj, path)
    _fill(info, plain, config.to_dict(), history)


def _read_summary(path: Path, info: RunInfo) -> None:
    from .config import TrainConfig, shown_value
    from .state import valid_history

    def bad(what: str) -> TrainingError:
        return TrainingError(f"{path}: not a usable run summary ({what}); remove the run folder if it is not needed")

    try:
        if path.stat().st_size > MAX_SUMMARY_BYTES:
            raise bad(f"larger than {MAX_SUMMARY_BYTES // 2**20} MB")
        obj = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad(f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(obj, dict) or obj.get("format") != SUMMARY_FORMAT:
        raise bad("not written by this app")
    version = obj.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > SUMMARY_VERSION:
        raise bad(f"format version {str(version)[:20]!r}; update ResNet GUI to read it")
    try:
        config = TrainConfig.from_dict(obj.get("config") if isinstance(obj.get("config"), dict) else {}).validate()
    except (TypeError, ResnetGuiError) as exc:
        raise bad(f"configuration: {exc}") from None
    epoch = obj.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= 10_000:
        raise bad("epochs completed")
    try:
        validate_name(obj.get("run_name") if isinstance(obj.get("run_name"), str) else "")
    except RegistryError:
        raise bad("run name") from None
    try:
        history = valid_history(obj.get("history") or [])
        plain = {k: to_plain(obj.get(k)) for k in ("best_val_accuracy", "best_name", "dataset")}
    except (ValueError, TooLarge) as exc:
        raise bad(str(exc)) from None
    best = obj.get("best_val_accuracy")
    if best is not None and finite_fraction(best) is None:
        raise bad(f"best validation accuracy {shown_value(best)}")
    _fill(info, {**plain, "epoch": epoch}, config.to_dict(), history)
    removed = obj.get("state_removed")
    info.state_removed = removed[:100] if isinstance(removed, str) else None


def read_run(folder: Path) -> RunInfo:
    """Everything about one run folder; never raises for a bad run (the reason goes to `error`)."""
    info = RunInfo(name=folder.name, path=str(folder), status=NO_STATE, disk_bytes=0, state_bytes=0, modified=0.0,
                   has_state=False)
    if folder.is_symlink():
        info.status, info.error = UNREADABLE, "the run folder is a symbolic link; it is not followed"
        return info
    info.disk_bytes, newest, events = _walk(folder)
    info.modified = newest or _mtime(folder)
    state, summary = folder / STATE_FILE, folder / SUMMARY_FILE
    try:
        if state.exists() or state.is_symlink():
            info.has_state = True
            info.state_bytes = state.lstat().st_size
            _read_state(state, info)
        elif summary.is_file():
            _read_summary(summary, info)
    except (ResnetGuiError, CheckpointError, OSError) as exc:
        log.warning("unusable run %s: %s", folder, exc)
        info.status, info.error = UNREADABLE, str(exc)
        return info
    except Exception as exc:  # noqa: BLE001 - one bad run never hides the others
        log.warning("unexpected error reading run %s", folder, exc_info=True)
        info.status, info.error = UNREADABLE, f"{folder}: cannot be read ({type(exc).__name__})"
        return info
    duration = _history_duration(info.history)
    if duration is not None:
        info.duration_s, info.duration_source = duration, "history"
    else:
        duration = _file_duration(folder, newest, events)
        if duration is not None:
            info.duration_s, info.duration_source = duration, "files"
    return info


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0
