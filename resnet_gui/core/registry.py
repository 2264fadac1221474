"""The model registry: a folder of checkpoints in our format, plus registry.json for the default.

The folder is `models/` under the platformdirs user data dir, or under RESNET_GUI_HOME. Any `.pth`
dropped there shows up; a file that cannot be read is listed as broken with its reason, and the
others keep working. Listing reads only metadata (memory-mapped load, no tensor data).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .checkpoint import Checkpoint, read_metadata, save_checkpoint
from .errors import CheckpointError, RegistryError
from .names import validate_name
from .paths import models_dir

INDEX_FILE = "registry.json"
SUFFIX = ".pth"


@dataclass
class ModelEntry:
    name: str
    path: Path
    size: int
    modified: float
    meta: dict[str, Any] | None = None
    error: str | None = None
    is_default: bool = False

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def val_accuracy(self) -> float | None:
        value = (self.meta or {}).get("metrics", {}).get("val_accuracy")
        return float(value) if isinstance(value, (int, float)) else None

    def to_json(self) -> dict[str, Any]:
        base = {"name": self.name, "path": str(self.path), "size_bytes": self.size,
                "modified": _dt.datetime.fromtimestamp(self.modified).astimezone().isoformat(timespec="seconds"),
                "default": self.is_default}
        if self.error is not None:
            return {**base, "error": self.error}
        return {**base, **{k: v for k, v in (self.meta or {}).items() if k != "format"}}


class Registry:
    # (path, mtime_ns, size) -> (meta, error); shared by all instances, guarded by a lock.
    _cache: dict[tuple[str, int, int], tuple[dict | None, str | None]] = {}
    _lock = threading.Lock()

    def __init__(self, root: os.PathLike | str | None = None):
        self.root = Path(root) if root is not None else models_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    # ---- index -------------------------------------------------------------------------
    def _index(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / INDEX_FILE).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_index(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / INDEX_FILE, json.dumps(data, indent=2).encode("utf-8"))

    # ---- reading -----------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        return self.root / f"{validate_name(name)}{SUFFIX}"

    def _entry(self, path: Path, default: str | None) -> ModelEntry:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            try:
                cached = (read_metadata(path), None)
            except CheckpointError as exc:
                cached = (None, str(exc).removeprefix(f"{path}: "))
            with self._lock:
                self._cache[key] = cached
        meta, error = cached
        return ModelEntry(name=path.stem, path=path, size=st.st_size, modified=st.st_mtime, meta=meta,
                          error=error, is_default=(path.stem == default))

    def list(self) -> list[ModelEntry]:
        """Every .pth in the folder, broken ones included, sorted by name."""
        default = self._index().get("default")
        entries = []
        for path in sorted(self.root.glob(f"*{SUFFIX}"), key=lambda p: p.name.lower()):
            if path.name.startswith("."):
                continue  # temporary files of an atomic save in progress
            try:
                entries.append(self._entry(path, default))
            except FileNotFoundError:
                continue  # removed while listing
        return entries

    def names(self) -> list[str]:
        return [e.name for e in self.list()]

    def get(self, name: str) -> ModelEntry:
        path = self.path_for(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise RegistryError(f"no model named {name!r} in the registry ({self.root}); known: {known}")
        return self._entry(path, self._index().get("default"))

    def details(self, name: str) -> dict[str, Any]:
        return self.get(name).to_json()

    def default_name(self) -> str | None:
        """The chosen default if it still exists and works, else the newest working model, else None."""
        entries = [e for e in self.list() if not e.broken]
        chosen = self._index().get("default")
        if any(e.name == chosen for e in entries):
            return chosen
        if not entries:
            return None
        return max(entries, key=lambda e: ((e.meta or {}).get("created") or "", e.modified)).name

    def resolve(self, name_or_file: str | os.PathLike | None) -> Path:
        """A registry name or a checkpoint file path -> the file; None -> the default model."""
        if name_or_file is None:
            name = self.default_name()
            if name is None:
                raise RegistryError(f"the model registry ({self.root}) has no usable model yet; "
                                    "train one, or import one with 'resnet-gui models import FILE'")
            return self.path_for(name)
        candidate = Path(name_or_file).expanduser()
        if candidate.is_file():
            return candidate
        try:
            return self.get(str(name_or_file)).path
        except RegistryError:
            if candidate.suffix.lower() == SUFFIX or os.sep in str(name_or_file):
                raise RegistryError(f"{name_or_file}: file not found") from None
            raise

    # ---- writing -----------------------------------------------------------------------
    def unique_name(self, base: str) -> str:
        base = validate_name(re.sub(r"[^A-Za-z0-9._+\- ]+", "_", base).strip(" ._-") or "model")
        name, n = base, 2
        while self.path_for(name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def add(self, ckpt: Checkpoint, name: str, *, overwrite: bool = False, half: bool = False) -> ModelEntry:
        path = self.path_for(name)
        if path.exists() and not overwrite:
            raise RegistryError(f"a model named {path.stem!r} already exists; choose another name")
        save_checkpoint(ckpt, path, half=half)
        return self.get(path.stem)

    def import_file(
        self,
        source: os.PathLike | str,
        *,
        name: str | None = None,
        class_names: str | Sequence[str] | None = None,
        arch: str | None = None,
        preprocess: dict | None = None,
    ) -> ModelEntry:
        """Import ours or a foreign state dict; the stored file is always in our format.

        preprocess: optional overrides (input_size, resize, mean, std, interpolation) of the
        preprocessing the checkpoint carries or its architecture's default.
        """
        from .foreign import import_file

        source = Path(source)
        ckpt = import_file(source, class_names=class_names, arch=arch, preprocess=preprocess)
        if name is not None:
            name = validate_name(name)
            if self.path_for(name).exists():
                raise RegistryError(f"a model named {name!r} already exists; choose another name")
        else:
            name = self.unique_name(source.stem)
        return self.add(ckpt, name)

    def rename(self, old: str, new: str) -> ModelEntry:
        src = self.get(old).path
        new = validate_name(new)
        dst = self.path_for(new)
        if dst.exists() and dst != src:
            raise RegistryError(f"a model named {new!r} already exists")
        os.replace(src, dst)
        index = self._index()
        if index.get("default") == src.stem:
            index["default"] = new
            self._write_index(index)
        return self.get(new)

    def remove(self, name: str) -> None:
        path = self.get(name).path
        path.unlink()
        index = self._index()
        if index.get("default") == path.stem:
            index.pop("default")
            self._write_index(index)

    def demo_installed_before(self) -> bool:
        return bool(self._index().get("demo_installed"))

    def mark_demo_installed(self) -> None:
        index = self._index()
        index["demo_installed"] = True
        self._write_index(index)

    def set_default(self, name: str) -> None:
        entry = self.get(name)
        if entry.broken:
            raise RegistryError(f"model {name!r} cannot be the default: {entry.error}")
        index = self._index()
        index["default"] = entry.name
        self._write_index(index)
