"""Where the app keeps its files: platformdirs folders, or one folder given by RESNET_GUI_HOME.

RESNET_GUI_HOME (tests, portable installs) puts everything under one folder:
models/, data/, runs/, logs/, cache/ and settings.json.
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from resnet_gui import APP_ID

ENV_HOME = "RESNET_GUI_HOME"
log = logging.getLogger(__name__)


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


# ---- files the user names for the app to write ------------------------------------------------------------
def _places(path: Path) -> set[Path]:
    """Where writing `path` lands: the path with its folder's links resolved (an atomic write replaces a link
    itself), and with the link followed too (to be safe either way)."""
    out = set()
    for attempt in (lambda: path.parent.resolve() / path.name, path.resolve):
        try:
            out.add(attempt())
        except (OSError, RuntimeError):  # a link loop: the write itself will fail and say so
            continue
    return out


def output_problem(output: os.PathLike | str, *, model: os.PathLike | str | None = None,
                   reading: Iterable[os.PathLike | str] = ()) -> str | None:
    """Why the app must not write the file or folder `output` that a user named, or None: it is inside the
    app's models or runs folder (it could replace a model or a run's state), it is the model's own checkpoint,
    or one of the files the command reads (`reading`: the images). The one check of every command and dialog
    that writes such a file: models export, evaluate's CSV and PNG, predict's CSV and --explain-dir, the GUI's."""
    path = Path(output).expanduser()
    places = _places(path)
    for folder in (models_dir(), runs_dir()):
        inside = _places(folder)
        if any(place.is_relative_to(f) for place in places for f in inside):
            return (f"{path} is inside the app's {folder.name} folder ({folder}); write it somewhere else so it "
                    "cannot replace a model or a run")
    if model is not None and places & _places(Path(model).expanduser()):
        return f"{path} is the model's own checkpoint; choose another file to write"
    for source in reading:  # thousands of images: only those of the same name are looked up
        if Path(source).name == path.name and places & _places(Path(source).expanduser()):
            return f"{path} is one of the files being read ({source}); choose another file to write"
    return None


def check_output(output: os.PathLike | str, *, model: os.PathLike | str | None = None,
                 reading: Iterable[os.PathLike | str] = ()) -> Path:
    """`output` as a Path, or OutputError saying why it must not be written (see output_problem)."""
    from .errors import OutputError

    problem = output_problem(output, model=model, reading=reading)
    if problem:
        raise OutputError(problem)
    return Path(output).expanduser()


@contextlib.contextmanager
def open_regular_file(path: Path, limit: int, what: str) -> Iterator[tuple[BinaryIO, int] | None]:
    """(the open file, its size) when `path` is a regular file of at most `limit` bytes; None (with a log line)
    for anything else: checked on the open file itself, which is opened without blocking (a FIFO), so a link to
    /dev/zero or a sparse file of gigabytes is never read. Read no more than the size it gave."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        yield None
        return
    except OSError as exc:
        log.warning("ignoring %s %s: %s", what, path, exc.strerror or exc)
        yield None
        return
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            log.warning("ignoring %s %s: not a regular file", what, path)
            yield None
        elif st.st_size > limit:
            log.warning("ignoring %s %s: larger than %d bytes", what, path, limit)
            yield None
        else:
            yield fh, st.st_size


def read_regular_file(path: Path, limit: int, what: str) -> bytes | None:
    """The bytes of `path` when it is a regular file of at most `limit` bytes; None (with a log line) for
    anything else (see open_regular_file; a file that grew past the limit since is not read beyond it)."""
    try:
        with open_regular_file(path, limit, what) as opened:
            if opened is None:
                return None
            data = opened[0].read(limit + 1)
    except OSError as exc:
        log.warning("ignoring %s %s: %s", what, path, exc.strerror or exc)
        return None
    if len(data) > limit:
        log.warning("ignoring %s %s: larger than %d bytes", what, path, limit)
        return None
    return data
