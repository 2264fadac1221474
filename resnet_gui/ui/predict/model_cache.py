"""Predictors for the GUI's workers, cached by (file, its identity on disk, device): one model in memory at a
time, built in the calling (worker) thread.

A Predictor is read-only and safe to call from several threads (core/inference/predictor.py). The workers that
share one still run each forward pass inside `using(predictor)`, for fairness rather than safety: an image asked
for while a folder runs is classified between two of the folder's batches instead of competing with them for the
same cores.
"""
from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_cached: tuple[tuple, Any] | None = None              # (key, Predictor)
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
    with _lock:
        cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    predictor = open_predictor(model_path, device=device)
    with _lock:
        _cached = (key, predictor)
    return predictor
