"""Which edition this installation is, decided by what is installed: the same package runs in both.

* full: PyTorch and torchvision are installed; the app classifies (ONNX Runtime), trains and shows runs.
* classify: they are not (the classify-only executable, or a light install): everything that does not train
  works; the Train and Runs tabs, and `resnet-gui train` / `runs`, say where training lives instead.

Deciding imports nothing: it only asks whether the packages are there (importlib's find_spec).
"""
from __future__ import annotations

import importlib.util

from resnet_gui import APP_ID

FULL, CLASSIFY = "full", "classify"
EDITIONS = (FULL, CLASSIFY)
TRAINING_ELSEWHERE = ("Training needs PyTorch, which this classify-only edition leaves out: train in the full edition "
                      "of ResNet GUI, or after “pip install resnet-gui”; the models trained there open here unchanged.")


def installed(*names: str) -> bool:
    """Whether every package named can be imported here, found without importing it (an import hook or a broken,
    half-removed install that refuses one counts as absent)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in names)
    except (ImportError, ValueError):
        return False


def current() -> str:
    """FULL when PyTorch and torchvision can be imported here, else CLASSIFY."""
    return FULL if installed("torch", "torchvision") else CLASSIFY


def can_train() -> bool:
    return current() == FULL


def train_one() -> str:
    """Where a new model comes from in this edition, as a sentence's start ("…, or import one")."""
    return "Train one in the Train tab" if can_train() else "Train one in the full edition"


def executable_name(edition: str) -> str:
    """The built folder's and executable's name: resnet-gui, resnet-gui-classify."""
    return APP_ID if edition == FULL else f"{APP_ID}-{edition}"
