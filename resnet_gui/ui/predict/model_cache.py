"""Predictors for the GUI's workers, cached by (file, its identity on disk, device): one model in memory at a
time, built in the calling (worker) thread.

A Predictor is read-only and safe to call from several threads (core/inference/predictor.py). The workers that
share one still run each forward pass inside `using(predictor)`, for fairness rather than safety: an image asked
for while a folder runs is classified between two of the folder's batches instead of competing with them for the
same cores.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)
_lock = threading.Lock()
_cached: tuple[tuple, Any] | None = None              # (key, Predictor)
_opening: dict[tuple, threading.Event] = {}           # keys being opened now: a second caller waits for the first
_model_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # Predictor -> its lock


@contextmanager
def using(predictor):
    """Hold `predictor` for one forward pass (other workers sharing it wait)."""
    with _lock:
        lock = _model_locks.setdefault(predictor, threading.Lock())
    with lock:
        yield predictor


def get_predictor(model_path: str, device: str = "auto"):
    """The Predictor of `model_path` on `device` (engine and precision chosen by core.engines.choose)."""
    global _cached
    from resnet_gui.core.engines.choose import open_predictor

    st = os.stat(model_path)
    # the change time and inode too: a file replaced (an atomic save renames a new inode into place) or rewritten
    # with its old size and modification time restored (os.utime) is read again
    key = (model_path, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size, device)
    while True:
        with _lock:
            if _cached is not None and _cached[0] == key:
                return _cached[1]
            opening = _opening.get(key)
            if opening is None:
                _opening[key] = threading.Event()
                break
        opening.wait()   # the same model is being opened (prewarm): use it, or open it here if that failed
    try:
        predictor = open_predictor(model_path, device=device)
        with _lock:
            _cached = (key, predictor)
        return predictor
    finally:
        with _lock:
            _opening.pop(key).set()


def prewarm(wanted: str | None, device: str = "auto", listing: Callable[[], Any] | None = None) -> threading.Thread:
    """Open the model the Predict tab will ask for first (`wanted`, the last one used, if it is still listed;
    else the registry's default) in a background thread while the window is being built, so that the tab's own
    load finds it here. Only for the ONNX Runtime engine: the window shows before PyTorch is imported. `listing`:
    what lists the registry (with .entries and .default; registry_model.FirstListing, which the window's first
    listing then shares); else Registry is listed here. Anything that goes wrong is left for that load to report."""
    def run():
        try:
            # listed first (milliseconds): the window's first listing may be waiting for it (FirstListing)
            if listing is not None:
                listed = listing()
                entries, default = listed.entries, listed.default
            else:
                from resnet_gui.core.models.registry import Registry

                registry = Registry()
                entries, default = registry.list(), registry.default_name()
            from resnet_gui.core.engines.choose import resolve_engine

            if resolve_engine("auto", device) != "onnxruntime":
                return
            names = {entry.name: entry for entry in entries if not entry.broken}
            name = wanted if wanted in names else default
            if name in names:
                get_predictor(str(names[name].path), device)
        except Exception:  # noqa: BLE001 - only a head start: the real load reports every failure
            log.debug("opening the first model ahead of the window failed", exc_info=True)

    thread = threading.Thread(target=run, name="prewarm-model", daemon=True)
    thread.start()
    return thread
