"""Predictors for the GUI's workers, cached by (file, modification time, device) and kept one per purpose:
"predict" (classifying images and folders, shared by those workers) and "explain" (Grad-CAM: hooks and a
backward pass, so a model of its own). Built in the calling (worker) thread.

A Predictor is not safe to call from two threads at once (its familiarity hook keeps the last batch's
features on the instance), so the workers that share one run each forward pass inside `using(predictor)`:
an image asked for while a folder runs is classified between two of the folder's batches."""
from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_cache: dict[str, tuple[tuple, Any]] = {}   # purpose -> (key, Predictor)
_model_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # Predictor -> its lock


@contextmanager
def using(predictor):
    """Hold `predictor` for one forward pass (other workers sharing it wait)."""
    with _lock:
        lock = _model_locks.setdefault(predictor, threading.Lock())
    with lock:
        yield predictor


def get_predictor(model_path: str, device: str = "auto", purpose: str = "predict"):
    from resnet_gui.core.inference.predictor import Predictor

    key = (model_path, os.path.getmtime(model_path), device)
    with _lock:
        cached = _cache.get(purpose)
    if cached is not None and cached[0] == key:
        return cached[1]
    predictor = Predictor.from_file(model_path, device=device)
    with _lock:
        _cache[purpose] = (key, predictor)  # one model per purpose in memory
    return predictor
