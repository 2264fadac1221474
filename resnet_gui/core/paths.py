"""Where the app keeps its files: platformdirs folders, or one folder given by RESNET_GUI_HOME.

RESNET_GUI_HOME (tests, portable installs) puts everything under one folder:
models/, data/, runs/, logs/, cache/ and settings.json.
"""
from __future__ import annotations

import os
from pathlib import Path

from resnet_gui import APP_ID

ENV_HOME = "RESNET_GUI_HOME"


def _home() -> Path | None:
    value = os.environ.get(ENV_HOME)
    return Path(value).expanduser() if value else None


def _platform(kind: str) -> Path:
    import platformdirs

    fn = {
        "data": platformdirs.user_data_dir,
        "config": platformdirs.user_config_dir,
        "log": platformdirs.user_log_dir,
        "cache": platformdirs.user_cache_dir,
    }[kind]
    return Path(fn(APP_ID, appauthor=False))


def data_dir() -> Path:
    """The app's data folder (models, datasets, runs live below it)."""
    path = _home() or _platform("data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sub(name: str) -> Path:
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The model registry folder."""
    return _sub("models")


def datasets_dir() -> Path:
    """Where downloaded datasets (CIFAR-10) are kept."""
    return _sub("data")


def runs_dir() -> Path:
    """Resumable training state, one sub-folder per run."""
    return _sub("runs")


def log_dir() -> Path:
    home = _home()
    path = home / "logs" if home else _platform("log")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Files the app can always make again (ONNX graphs built from checkpoints); safe to delete."""
    home = _home()
    path = home / "cache" if home else _platform("cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path:
    home = _home()
    folder = home if home else _platform("config")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "settings.json"
