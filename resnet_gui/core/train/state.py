"""The resumable train-state file (runs/<run name>/last.pth): save, load with validation, resume. (Listing
the runs, with or without a state, is runs.py's.)

A state file is data from disk like any other: every field is checked before it is used, and the run
name it carries must be a valid registry name, so a crafted file can never make a resumed run write
outside runs/ or the registry.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import RegistryError, ResnetGuiError, TrainingError
from ..models.safe_load import check_dense_tensors, safe_torch_load
from ..names import validate_name
from ..paths import runs_dir
from .config import TrainConfig, shown_value

log = logging.getLogger(__name__)

STATE_FORMAT = "resnet-gui-train-state"
STATE_VERSION = 1
STATE_FILE = "last.pth"


def run_state_path(run_name: str) -> Path:
    return runs_dir() / validate_name(run_name) / STATE_FILE


@dataclass
class TrainState:
    """A validated state file (tensors stay as loaded; only their types and names are checked)."""
    path: Path
    run_name: str
    config: TrainConfig
    epoch: int                       # epochs completed
    model: dict
    optimizer: dict
    scheduler: dict
    scaler: dict
    rng: dict
    class_names: list[str]
    best_val_accuracy: float | None = None
    best_name: str | None = None
    history: list[dict] = field(default_factory=list)


# What a history row may hold (the engine writes these per epoch; torchrun's launcher adds epoch_time_s), with
# the range a real run can record: a value outside it, of another type, or not finite means a damaged or
# crafted file (training stops on a non-finite loss, so no real run records one).
MAX_SECONDS = 1e9        # for one epoch: 31 years
HISTORY_FIELDS: dict[str, tuple[type, float, float]] = {
    "epoch": (int, 1, 10_000),
    "train_loss": (float, 0.0, math.inf), "val_loss": (float, 0.0, math.inf),
    "train_accuracy": (float, 0.0, 1.0), "val_accuracy": (float, 0.0, 1.0),
    "lr": (float, 0.0, 100.0), "images_per_s": (float, 0.0, 1e12),
    "train_time_s": (float, 0.0, MAX_SECONDS), "eval_time_s": (float, 0.0, MAX_SECONDS),
    "epoch_time_s": (float, 0.0, MAX_SECONDS),
}
MAX_HISTORY = 10_000


def valid_history(raw: Any) -> list[dict]:
    """A run's per-epoch history as plain rows of the known fields, each checked against HISTORY_FIELDS (other
    keys are dropped). Raises ValueError saying which row and value is wrong."""
    if not isinstance(raw, list) or len(raw) > MAX_HISTORY:
        raise ValueError(f"history is not a list of at most {MAX_HISTORY} epochs")
    rows = []
    for i, row in enumerate(raw, 1):
        if not isinstance(row, dict):
            raise ValueError(f"history row {i} is not a set of named values")
        clean = {}
        for key, (kind, low, high) in HISTORY_FIELDS.items():
            value = row.get(key)
            if value is None:
                continue
            ok = (not isinstance(value, bool) and isinstance(value, (int, float))
                  and (kind is float or isinstance(value, int))
                  and not (isinstance(value, float) and not math.isfinite(value)) and low <= value <= high)
            if not ok:
                what = "whole number" if kind is int else "finite number"
                span = f"from {low:g} to {high:g}" if math.isfinite(high) else f"of at least {low:g}"
                raise ValueError(f"history row {i}: {key} {shown_value(value)} is not a {what} {span}")
            clean[key] = int(value) if kind is int else float(value)
        rows.append(clean)
    return rows


def _bad(path: Path, what: str) -> TrainingError:
    return TrainingError(f"{path}: not a usable training state ({what}); start a new run instead")


def _header(obj: Any, path: Path) -> dict:
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a resumable training state of this app")
    version = obj.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad(path, f"format version {version!r} is not a whole number")
    if version > STATE_VERSION:
        raise TrainingError(f"{path}: saved by a newer version of the app (state format {version}); update "
                            "ResNet GUI to resume it")
    return obj


def _config(obj: dict, path: Path) -> TrainConfig:
    raw = obj.get("config")
    if not isinstance(raw, dict):
        raise _bad(path, "no training configuration")
    try:
        return TrainConfig.from_dict(raw).validate()
    except TypeError as exc:
        raise _bad(path, f"configuration: {exc}") from None
    except ResnetGuiError as exc:
        raise _bad(path, f"configuration: {exc}") from None


def _run_name(obj: dict, path: Path) -> str:
    name = obj.get("run_name")
    if not isinstance(name, str):
        raise _bad(path, "no run name")
    try:
        return validate_name(name)
    except RegistryError:
        raise _bad(path, f"run name {name[:80]!r} is not a valid name") from None


def _epoch(obj: dict, path: Path, epochs: int) -> int:
    epoch = obj.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= 10_000:
        raise _bad(path, f"epoch {str(epoch)[:40]!r} is not a number of completed epochs")
    return epoch


def load_state(path: Path) -> TrainState:
    """Load and validate a state file for resuming (weights_only=True, dense tensors only)."""
    path = Path(path)
    obj = _header(safe_torch_load(path), path)
    config = _config(obj, path)
    run_name = _run_name(obj, path)
    epoch = _epoch(obj, path, config.epochs)
    check_dense_tensors(obj.get("model"), path)
    for key in ("optimizer", "scheduler", "rng"):
        if not isinstance(obj.get(key), dict):
            raise _bad(path, f"no {key} state")
    if not isinstance(obj["rng"].get("torch"), torch.Tensor) or obj["rng"]["torch"].dtype != torch.uint8:
        raise _bad(path, "random number generator state")
    names = obj.get("class_names")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise _bad(path, "class names")
    best = obj.get("best_val_accuracy")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))
                             or not math.isfinite(best) or not 0 <= best <= 1):
        raise _bad(path, f"best validation accuracy {str(best)[:40]}")
    best_name = obj.get("best_name")
    if best_name is not None:
        try:
            best_name = validate_name(best_name) if isinstance(best_name, str) else validate_name("")
        except RegistryError:
            raise _bad(path, f"best model name {str(best_name)[:80]!r} is not a valid name") from None
    try:
        history = valid_history(obj.get("history") or [])
    except ValueError as exc:
        raise _bad(path, str(exc)) from None
    return TrainState(path=path, run_name=run_name, config=config, epoch=epoch, model=obj["model"],
                      optimizer=obj["optimizer"], scheduler=obj["scheduler"], scaler=obj.get("scaler") or {},
                      rng=obj["rng"], class_names=list(names), best_val_accuracy=best, best_name=best_name,
                      history=list(history))


def save_state(*, run_name: str, config: TrainConfig, epoch: int, model, optimizer, scheduler, scaler,
               best_val_accuracy: float | None, best_name: str | None, history: list[dict], class_names: list[str],
               preprocess: dict, dataset: dict) -> Path:
    """Write runs/<run_name>/last.pth atomically (the previous state stays until the new one is complete)."""
    state = {
        "format": STATE_FORMAT, "format_version": STATE_VERSION, "run_name": run_name,
        "config": config.to_dict(), "epoch": epoch,
        "model": {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(), "rng": rng_state(), "best_val_accuracy": best_val_accuracy,
        "best_name": best_name, "history": history, "class_names": list(class_names),
        "preprocess": preprocess, "dataset": dataset,
        "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    path = run_state_path(run_name)
    atomic_write(path, lambda fh: torch.save(state, fh))
    return path


def resolve_resume(name_or_file: str | Path) -> Path:
    """A run name (its runs/<name>/last.pth) or the path of a state file."""
    candidate = Path(name_or_file).expanduser()
    if candidate.is_file():
        return candidate
    try:
        path = run_state_path(str(name_or_file))
    except RegistryError:
        path = None
    if path is not None and path.is_file():
        return path
    known = ", ".join(sorted(p.parent.name for p in runs_dir().glob(f"*/{STATE_FILE}"))[:30]) or "none"
    raise TrainingError(f"no resumable run named {str(name_or_file)[:100]!r} (runs with a saved state in "
                        f"{runs_dir()}: {known})")


def resume_config(name_or_file: str | Path, **overrides) -> tuple[TrainConfig, Path]:
    """The saved config of a run (with e.g. epochs/device/workers/data overridden) and its state file. The saved
    config is checked; the overrides are checked with the rest when train() starts."""
    path = resolve_resume(name_or_file)
    obj = _header(safe_torch_load(path, mmap=True), path)
    config = _config(obj, path)
    _epoch(obj, path, config.epochs)
    _run_name(obj, path)
    return config.replace(**overrides), path


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, TypeError):
            torch.cuda.set_rng_state_all(rng["cuda"])
