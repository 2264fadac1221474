"""User settings (window size, last folders, chosen model, training form) as JSON in the platformdirs
config folder (or RESNET_GUI_HOME). Written atomically; a damaged file is ignored, never fatal, and a
value of the wrong type is ignored when read with `get(key, default, kind)`."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .paths import settings_file

log = logging.getLogger(__name__)


class Settings:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else settings_file()
        self.data: dict[str, Any] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self.data = loaded
        except FileNotFoundError:
            pass
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("ignoring unreadable settings file %s: %s", self.path, str(exc)[:200])

    def get(self, key: str, default: Any = None, kind: type | tuple[type, ...] | None = None) -> Any:
        """The value of `key`, or `default` when it is missing -- or, with `kind`, when the file holds a value of
        another type (a hand-edited or damaged settings file never crashes the app)."""
        value = self.data.get(key, default)
        if kind is not None and value is not default:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            bad_bool = isinstance(value, bool) and bool not in kinds
            if bad_bool or not isinstance(value, kinds):
                log.warning("ignoring setting %s in %s: expected %s, found %s", key, self.path,
                            "/".join(k.__name__ for k in kinds), type(value).__name__)
                return default
        return value

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    def save(self) -> bool:
        try:
            atomic_write_bytes(self.path, json.dumps(self.data, indent=2, sort_keys=True).encode("utf-8"))
            return True
        except (OSError, TypeError, ValueError) as exc:  # a full disk must not crash the app on exit
            log.warning("could not save settings to %s: %s", self.path, exc)
            return False
