"""User settings (window size, last folders, chosen model, training form) as JSON in the platformdirs
config folder (or RESNET_GUI_HOME). Written atomically.

The file is read only when it is a regular file of at most 1 MiB (a symbolic link to /dev/zero, a FIFO or a
device is ignored without reading it); a damaged file is ignored. Every key is declared in SCHEMA with its
type and range: a value that cannot be used is dropped when the file is read, with a line in the log, and
reading or writing an undeclared key is a programming error (KeyError). The training form's fields are
TrainConfig's and are checked by it (core/train/config.py: usable_form)."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .paths import read_regular_file, settings_file

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20  # the app writes a few kB
MAX_TEXT = 4096           # characters in a path, a name or a choice


@dataclass(frozen=True)
class Key:
    """One setting: its type (bool, int, float, str or dict), its range or choices, and an extra check."""
    kind: type
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    max_chars: int = MAX_TEXT
    check: Callable[[Any], bool] | None = None
    check_says: str = ""

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be used for this key, or None."""
        shown = repr(value)[:60]
        if self.kind is bool:
            return None if isinstance(value, bool) else f"expected true or false, found {shown}"
        if self.kind in (int, float):
            kinds = (int,) if self.kind is int else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                return f"expected a {'whole ' if self.kind is int else ''}number, found {shown}"
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not ((isinstance(value, int) or math.isfinite(value)) and low <= value <= high):  # 10**400 is an int
                return f"expected a finite number from {low:g} to {high:g}, found {shown}"
        elif self.kind is str:
            if not isinstance(value, str) or len(value) > self.max_chars or "\x00" in value:
                return f"expected text of at most {self.max_chars} characters, found {shown}"
            if self.choices and value not in self.choices:
                return f"expected one of {', '.join(self.choices)}, found {shown}"
        elif not isinstance(value, self.kind):
            return f"expected {self.kind.__name__}, found {type(value).__name__}"
        if self.check is not None and not self.check(value):
            return f"expected {self.check_says}, found {shown}"
        return None


def _base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def _forms(value: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items())


PATH = Key(str)
SCHEMA: dict[str, Key] = {
    "theme": Key(str, choices=("system", "light", "dark")),
    "window.geometry": Key(str, max_chars=65_536, check=_base64, check_says="Qt's saved geometry in base64"),
    "window.tab": Key(int, low=0, high=15),
    "predict.model": Key(str),
    "predict.unsure_below": Key(float, low=0.0, high=1.0),
    "predict.last_image_dir": PATH,
    "predict.last_folder": PATH,
    "predict.export_dir": PATH,
    "predict.sort_folder": PATH,
    "evaluate.model": Key(str),
    "evaluate.data": Key(str, choices=("folder", "cifar10", "validation")),
    "evaluate.folder": PATH,
    "evaluate.tta": Key(bool),
    "evaluate.export_dir": PATH,
    "train.mode": Key(str, choices=("cifar10", "finetune", "scratch")),
    "train.forms": Key(dict, check=_forms, check_says="one form (an object of TrainConfig fields) per recipe"),
    "train.gpus": Key(int, low=1, high=1024),
    "train.advanced_open": Key(bool),
    "train.cifar_location": PATH,
    "train.folder": PATH,
    "models.last_import_dir": PATH,
    "models.export_dir": PATH,
    "models.familiarity_dir": PATH,
}


def _declared(key: str) -> Key:
    try:
        return SCHEMA[key]
    except KeyError:
        raise KeyError(f"setting {key!r} is not declared in core/settings.py SCHEMA") from None


class Settings:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else settings_file()
        self.data: dict[str, Any] = {}
        raw = read_regular_file(self.path, MAX_FILE_BYTES, "settings file")
        if raw is None:
            return
        try:
            loaded = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            log.warning("ignoring unreadable settings file %s: %s", self.path, str(exc)[:200])
            return
        if not isinstance(loaded, dict):
            log.warning("ignoring settings file %s: not a JSON object", self.path)
            return
        for key, value in loaded.items():
            problem = SCHEMA[key].problem(value) if key in SCHEMA else None
            if problem:
                log.warning("ignoring setting %s in %s: %s", key, self.path, problem)
            else:
                self.data[key] = value  # undeclared keys (a newer version's) are kept for saving back

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key` (declared in SCHEMA, checked when the file was read), or `default`."""
        _declared(key)
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Keep `value` for `key`; a value the schema refuses is not kept (a line in the log)."""
        problem = _declared(key).problem(value)
        if problem:
            log.warning("not saving setting %s: %s", key, problem)
            self.data.pop(key, None)
            return
        self.data[key] = value

    def save(self) -> bool:
        try:
            atomic_write_bytes(self.path, json.dumps(self.data, indent=2, sort_keys=True).encode("utf-8"))
            return True
        except (OSError, TypeError, ValueError) as exc:  # a full disk must not crash the app on exit
            log.warning("could not save settings to %s: %s", self.path, exc)
            return False
