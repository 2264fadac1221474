"""Training runs on disk (runs/<run name>/): list them, show one, compare several, free their space.

Every run folder is one run (read by run_files.py into a RunInfo: status, size, figures, duration). Its
resumable state (last.pth, see train/state.py) holds the configuration, the completed epochs and the per-epoch
history; it is 2-3 times the size of the model and stays after the run ends. Removing it frees that space; the
run's best model stays in the registry, and a small summary.json (configuration, history, figures) is written
first so the run is still listed and can still be compared, only no longer resumed.

Safety: names are validated before any path is built, only direct children of runs/ are touched, run
folders that are symbolic links are listed with an error and never followed or deleted, and a state or
summary that cannot be read is listed with its reason without hiding the other runs.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, remove_stale_temporaries
from ..errors import RegistryError, TrainingError
from ..names import validate_name
from ..paths import runs_dir
from .run_files import (  # noqa: F401 - RunInfo, the statuses and the file names are this module's API too
    FINISHED,
    NO_STATE,
    STATE_FILE,
    STATUSES,
    SUMMARY_FILE,
    SUMMARY_FORMAT,
    SUMMARY_VERSION,
    UNFINISHED,
    UNREADABLE,
    RunInfo,
    read_run,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _run_folder(name: str) -> Path:
    """runs/<name> for a valid name, refusing anything that is not a real folder directly inside runs/."""
    try:
        name = validate_name(name)
    except RegistryError as exc:
        raise TrainingError(str(exc).replace("invalid model name", "invalid run name", 1)) from None
    root = runs_dir()
    folder = root / name
    if folder.is_symlink():
        raise TrainingError(f"{folder} is a symbolic link; run folders are never followed or deleted through "
                            "links. Remove the link yourself if it should go")
    if not folder.is_dir():
        known = ", ".join(r.name for r in list_run_infos()[:30]) or "none"
        raise TrainingError(f"no run named {name!r} in {root} (runs: {known})")
    if folder.resolve().parent != root.resolve():
        raise TrainingError(f"{folder} is not inside the runs folder {root}; it was not touched")
    return folder


def list_run_infos() -> list[RunInfo]:
    """Every run folder, newest first: finished, unfinished, without state, unreadable."""
    root = runs_dir()
    try:
        folders = [Path(e.path) for e in os.scandir(root) if not e.name.startswith(".")
                   and e.is_dir()]
    except OSError:
        return []
    return sorted((read_run(f) for f in folders), key=lambda r: (r.modified, r.name), reverse=True)


def run_info(name: str) -> RunInfo:
    """One run by name (TrainingError when there is no such run folder)."""
    return read_run(_run_folder(name))


# ---------------------------------------------------------------------------------------------
# freeing space
# ---------------------------------------------------------------------------------------------
@dataclass
class Removed:
    """What removing a run's state (or the whole run) freed."""
    name: str
    bytes_freed: int
    best_name: str | None         # the registry model, which stays
    whole_run: bool = False       # the whole folder went (summary and TensorBoard logs too)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _summary(info: RunInfo) -> bytes:
    obj = {"format": SUMMARY_FORMAT, "format_version": SUMMARY_VERSION, "run_name": info.name,
           "config": info.config, "epoch": info.epoch, "best_val_accuracy": info.best_val_accuracy,
           "best_name": info.best_name, "history": info.history, "dataset": info.dataset_details,
           "state_removed": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    return json.dumps(obj, indent=1, allow_nan=False).encode("utf-8")


def remove_run_state(name: str) -> Removed:
    """Delete runs/<name>/last.pth, freeing its space; the run's model stays in the registry. A summary (config,
    history, figures) is kept so the run is still listed and comparable; it can no longer be resumed."""
    folder = _run_folder(name)
    state = folder / STATE_FILE
    if not (state.exists() or state.is_symlink()):
        raise TrainingError(f"run {folder.name!r} has no training state to remove (it was removed already, or the "
                            "run ended before its first epoch)")
    info = read_run(folder)
    if info.status in (FINISHED, UNFINISHED):
        atomic_write_bytes(folder / SUMMARY_FILE, _summary(info))
    size = state.lstat().st_size
    state.unlink()  # a link is removed, never its target
    remove_stale_temporaries(folder)
    log.info("removed the training state of run %s (%d bytes)", folder.name, size)
    return Removed(name=folder.name, bytes_freed=size, best_name=info.best_name)


def remove_run(name: str) -> Removed:
    """Delete the whole run folder (state, summary, TensorBoard logs); the run's model stays in the registry."""
    folder = _run_folder(name)
    info = read_run(folder)
    shutil.rmtree(folder)
    log.info("removed run folder %s (%d bytes)", folder, info.disk_bytes)
    return Removed(name=folder.name, bytes_freed=info.disk_bytes, best_name=info.best_name, whole_run=True)


def prune(*, finished: bool = True, dry_run: bool = False) -> list[Removed]:
    """Remove the states of all finished runs (epochs done == epochs configured); dry_run=True only says what
    would be freed. Unfinished and unreadable runs are never touched."""
    if not finished:
        raise ValueError("prune() selects finished runs only; call it with finished=True")
    out = []
    for info in list_run_infos():
        if info.status != FINISHED or not info.has_state:
            continue
        if dry_run:
            out.append(Removed(name=info.name, bytes_freed=info.state_bytes, best_name=info.best_name))
        else:
            out.append(remove_run_state(info.name))
    return out


# ---------------------------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Runs side by side: their configurations (every key, in TrainConfig's order), the keys whose values
    differ, and their histories for overlaying curves."""
    runs: list[RunInfo]
    keys: list[str]
    differing: list[str]

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        return {r.name: r.config for r in self.runs}

    @property
    def histories(self) -> dict[str, list[dict[str, Any]]]:
        return {r.name: r.history for r in self.runs}

    def to_json(self) -> dict[str, Any]:
        return {"runs": [r.to_json(history=False) for r in self.runs], "keys": self.keys,
                "differing": self.differing, "configs": self.configs, "histories": self.histories}


def compare(names: list[str]) -> Comparison:
    """Two or more runs (with a state or a summary) side by side."""
    from .config import TrainConfig

    unique = list(dict.fromkeys(n.strip() if isinstance(n, str) else n for n in names))
    if len(unique) < 2:
        raise TrainingError("compare needs at least two different runs")
    runs = []
    for name in unique:
        info = run_info(name)
        if info.error is not None:
            raise TrainingError(f"run {name!r} cannot be compared: {info.error}")
        if info.status == NO_STATE:
            raise TrainingError(f"run {name!r} has neither a training state nor a summary (it ended before its "
                                "first epoch); there is nothing to compare")
        runs.append(info)
    order = [f.name for f in TrainConfig.__dataclass_fields__.values()]
    present = {k for r in runs for k in r.config}
    keys = [k for k in order if k in present] + sorted(present - set(order))
    differing = [k for k in keys
                 if len({json.dumps(r.config[k], sort_keys=True) if k in r.config else "<missing>" for r in runs}) > 1]
    return Comparison(runs=runs, keys=keys, differing=differing)
