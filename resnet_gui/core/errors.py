"""Every error a user may see, the one cancellation exception, and the one translator to a message.

`user_message(exc)` is the only place an exception becomes text for a person: the GUI's workers, the
training entry point and the CLI all call it. Messages name the file or value at fault and what to do;
tracebacks go to the log file only.
"""
from __future__ import annotations

import errno
import logging

log = logging.getLogger(__name__)


class ResnetGuiError(Exception):
    """Base class: an error whose message is meant for the user, never a traceback."""


class CheckpointError(ResnetGuiError):
    """A checkpoint file could not be read, is unsafe, or does not fit its architecture."""


class ImageLoadError(ResnetGuiError):
    """An image could not be opened or decoded."""


class DatasetError(ResnetGuiError):
    """A dataset is missing, empty or unusable."""


class ModelError(ResnetGuiError):
    """An unknown architecture, or pretrained weights that cannot be found."""


class RegistryError(ResnetGuiError):
    """A model registry operation failed (unknown name, name taken, ...)."""


class TrainingError(ResnetGuiError):
    """Training stopped because of a problem (non-finite loss, out of memory, bad settings)."""


class DeviceError(ResnetGuiError):
    """The requested device (cuda:1, mps, ...) does not exist here."""


class DownloadError(ResnetGuiError):
    """A download failed or its content did not match the expected checksum."""


class ExportError(ResnetGuiError):
    """A model could not be exported (a missing optional package, an output that would overwrite app files)."""


class OutputError(ResnetGuiError):
    """An output file the user named would replace a model, a run, or a file being read (core.paths.check_output)."""


class Cancelled(Exception):
    """The user asked to stop (a download, data preparation, a prediction run, training).

    Not a ResnetGuiError: it is not a failure, and callers report it as "stopped", not as an error.
    """


def _capitalised(text: str) -> str:
    """A sentence: capital first letter, final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def user_message(exc: BaseException) -> str:
    """One sentence (or a few) for a person, for any exception. Unexpected ones are logged with their
    traceback, and the message says where that log is."""
    if isinstance(exc, Cancelled):
        return "Stopped."
    if isinstance(exc, ResnetGuiError):
        return _capitalised(str(exc))
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory. Close other programs, or use a smaller batch size or image size."
    if isinstance(exc, OSError):
        filename = getattr(exc, "filename", None)
        where = f" ({filename})" if filename else ""
        if exc.errno == errno.ENOSPC:
            return f"The disk is full{where}. Free some space and try again; files saved earlier are kept."
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"Permission denied{where}. Choose a folder you can write to."
        if exc.errno == errno.EROFS:
            return f"The disk is read-only{where}. Choose another folder."
        return f"A file operation failed{where}: {exc.strerror or exc}."
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return (f"Unexpected error: {type(exc).__name__}: {exc}. The details are in the log file "
            "(Help → Open log folder).")
