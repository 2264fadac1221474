"""The model registry: a folder of checkpoints in our format, plus registry.json for the default.

The folder is `models/` under the platformdirs user data dir, or under RESNET_GUI_HOME. Any `.pth`
dropped there shows up; a file that cannot be read is listed as broken with its reason, and the
others keep working. Listing reads only metadata (memory-mapped load, no tensor data).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, remove_stale_temporaries
from ..errors import CheckpointError, RegistryError, Remedy
from ..jsonsafe import finite_fraction
from ..names import MAX_NAME, SUFFIX, name_from, validate_name
from ..paths import models_dir
from .checkpoint import Checkpoint, read_checkpoint_metadata, write_checkpoint

INDEX_FILE = "registry.json"
MAX_INDEX_BYTES = 1 << 20
log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        return finite_fraction((self.meta or {}).get("metrics", {}).get("val_accuracy"))

    def accuracy(self) -> tuple[float, str] | None:
        """The figure to show for the model, and its name: "test accuracy" when it carries one measured on
        held-out images that chose nothing (the validation split chose the best epoch, fitted the temperature
        and set the familiarity threshold, so its figure is optimistic), else "validation accuracy"; None when
        it has neither."""
        test = finite_fraction((self.meta or {}).get("metrics", {}).get("test_accuracy"))
        if test is not None:
            return test, "test accuracy"
        return (self.val_accuracy, "validation accuracy") if self.val_accuracy is not None else None

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

    _cleaned: set[str] = set()

    def __init__(self, root: os.PathLike | str | None = None):
        self.root = Path(root) if root is not None else models_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        if str(self.root) not in Registry._cleaned:  # once per process: leftovers of a killed save
            Registry._cleaned.add(str(self.root))
            remove_stale_temporaries(self.root)

    # ---- index -------------------------------------------------------------------------
    def _index(self) -> dict[str, Any]:
        """registry.json (the default model, whether the demo was installed); anything unreadable, of the wrong
        type or absurdly nested counts as empty, so a damaged index never breaks the registry."""
        path = self.root / INDEX_FILE
        try:
            if path.stat().st_size > MAX_INDEX_BYTES:
                raise ValueError("too large")
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("ignoring unreadable %s: %s", path, str(exc)[:200])
            return {}
        if not isinstance(data, dict):
            return {}
        out: dict[str, Any] = {}
        if isinstance(data.get("default"), str):
            out["default"] = data["default"]
        if data.get("demo_installed") is True:
            out["demo_installed"] = True
        return out

    def _write_index(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / INDEX_FILE, json.dumps(data, indent=2).encode("utf-8"))

    # ---- reading -----------------------------------------------------------------------
    def path_for(self, name: str) -> Path:
        """Where a model of this (valid) name lives."""
        return self.root / f"{validate_name(name)}{SUFFIX}"

    def _existing_path(self, name: str) -> Path | None:
        """The file of a listed model: valid names, and also files dropped into the folder under names outside
        the pattern ("my model (v2).pth") -- only ever a direct child of the registry folder."""
        try:
            path = self.path_for(name)
            return path if path.is_file() else None
        except RegistryError:
            pass
        if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name \
                or "\x00" in name or Path(name).name != name:
            return None
        path = self.root / f"{name}{SUFFIX}"
        return path if path.is_file() and path.parent == self.root else None

    def _entry(self, path: Path, default: str | None) -> ModelEntry:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise
        except OSError as exc:  # a symlink loop, permissions
            return ModelEntry(name=path.stem, path=path, size=0, modified=0.0,
                              error=f"cannot be read ({exc.strerror or exc})", is_default=False)
        if not stat.S_ISREG(st.st_mode):
            return ModelEntry(name=path.stem, path=path, size=0, modified=st.st_mtime,
                              error="not a regular file", is_default=False)
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            try:
                cached = (read_checkpoint_metadata(path), None)
            except CheckpointError as exc:
                cached = (None, str(exc).removeprefix(f"{path}: "))
            except Exception as exc:  # noqa: BLE001 - one bad file never breaks the listing
                log.warning("unexpected error reading %s", path, exc_info=True)
                cached = (None, f"cannot be read ({type(exc).__name__})")
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
        path = self._existing_path(name)
        if path is None:
            known = ", ".join(self.names()[:30]) or "none yet"
            raise RegistryError(f"no model named {str(name)[:120]!r} in the registry ({self.root}); known: {known}")
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
            return self.get(name).path
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
        """A valid, unused name made from any text, shortened so a "-N" suffix still fits."""
        base = name_from(base, max_length=MAX_NAME - 4)
        name, n = base, 2
        while self.path_for(name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def add(self, ckpt: Checkpoint, name: str, *, overwrite: bool = False, half: bool = False) -> ModelEntry:
        """Save `ckpt` as `name`. Without overwrite the file is created exclusively: of two processes adding the
        same name at once, one succeeds and the other gets a RegistryError, never a silent replacement."""
        path = self.path_for(name)
        try:
            write_checkpoint(ckpt, path, half=half, overwrite=overwrite)
        except FileExistsError:
            raise RegistryError(f"a model named {path.stem!r} already exists; choose another name") from None
        return self.get(path.stem)

    def import_file(
        self,
        source: os.PathLike | str,
        *,
        name: str | None = None,
        class_names: str | Sequence[str] | None = None,
        arch: str | None = None,
        preprocess: dict | None = None,
        allow_duplicate: bool = False,
    ) -> ModelEntry:
        """Import ours or a foreign state dict; the stored file is always in our format.

        preprocess: optional overrides (input_size, resize, mean, std, interpolation) of the
        preprocessing the checkpoint carries or its architecture's default. The same file imported twice
        is refused, naming the model it already is (allow_duplicate=True imports it anyway).
        """
        from .import_foreign import import_file

        source = Path(source)
        digest = file_sha256(source)
        if not allow_duplicate:
            self.refuse_duplicate(source, digest)
        ckpt = import_file(source, class_names=class_names, arch=arch, preprocess=preprocess)
        ckpt.notes = {**ckpt.notes, "source_sha256": digest, "imported_from": str(source)}
        name = validate_name(name) if name is not None else self.unique_name(source.stem)
        return self.add(ckpt, name)

    def refuse_duplicate(self, source: Path, digest: str | None = None) -> None:
        """RegistryError naming the model when this exact file was imported before."""
        try:
            digest = digest or file_sha256(source)
        except OSError:
            return  # reported by the import itself
        for entry in self.list():
            if (entry.meta or {}).get("notes", {}).get("source_sha256") == digest:
                raise RegistryError(f"{Path(source).name} is already in the registry as {entry.name!r}",
                                    remedy=Remedy("allow_duplicate"))

    def update(self, name: str, *, class_names: Sequence[str] | None = None,
               preprocess: dict | None = None) -> ModelEntry:
        """Change the class names or the preprocessing of a model (after an import); saved atomically."""
        from .checkpoint import read_checkpoint
        from .import_foreign import parse_class_names
        from .preprocess import with_overrides

        entry = self.get(name)
        ckpt = read_checkpoint(entry.path)
        if class_names is not None:
            names = parse_class_names(list(class_names))
            if len(names) != ckpt.num_classes:
                raise RegistryError(f"the model has {ckpt.num_classes} classes but {len(names)} names were given")
            if ckpt.operating_points:  # a class keeps its threshold under its new name
                renamed = dict(zip(ckpt.class_names, names))
                ckpt.operating_points = {renamed[k]: v for k, v in ckpt.operating_points.items() if k in renamed}
            ckpt.class_names = names
        if preprocess:
            try:
                ckpt.preprocess = with_overrides(ckpt.preprocess, **preprocess)
            except (TypeError, ValueError) as exc:
                raise RegistryError(f"bad preprocessing: {exc}") from None
        write_checkpoint(ckpt, entry.path, half=ckpt.notes.get("weights_dtype") == "float16")  # same size as before
        return self.get(entry.name)

    def set_operating_points(self, name: str, changes: dict[str, dict | None]) -> ModelEntry:
        """Set (a dict with at least `threshold`) or remove (None) classes' own thresholds; saved atomically."""
        from .checkpoint import read_checkpoint
        from .operating_points import clean

        entry = self.get(name)
        ckpt = read_checkpoint(entry.path)
        points = dict(ckpt.operating_points or {})
        for class_name, value in changes.items():
            if class_name not in ckpt.class_names:
                raise RegistryError(f"the model {entry.name!r} has no class {class_name!r}")
            if value is None:
                points.pop(class_name, None)
                continue
            kept = clean({class_name: value}, ckpt.class_names)
            if not kept:
                raise RegistryError(f"the threshold for {class_name!r} must be a number from 0 to 1")
            points[class_name] = kept[class_name]
        ckpt.operating_points = points or None
        write_checkpoint(ckpt, entry.path, half=ckpt.notes.get("weights_dtype") == "float16")
        return self.get(entry.name)

    def rename(self, old: str, new: str) -> ModelEntry:
        src = self.get(old).path
        new = validate_name(new)
        dst = self.path_for(new)
        if dst == src:
            return self.get(new)
        try:
            os.link(src, dst)  # never replaces an existing model, even one created a moment ago
        except FileExistsError:
            raise RegistryError(f"a model named {new!r} already exists") from None
        except OSError:  # file systems without hard links
            if dst.exists():
                raise RegistryError(f"a model named {new!r} already exists") from None
            os.replace(src, dst)
        else:
            src.unlink()
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
