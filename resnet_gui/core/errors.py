"""Every error a user may see, the one cancellation exception, what to do about an error, and the one
translator to a message.

`user_message(exc)` is the only place an exception becomes text for a person: the GUI's workers, the
training entry point and the CLI all call it. Messages name the file or value at fault and what to do;
tracebacks go to the log file only.

What to do is data where a control or an option does it: `raise TrainingError("…", remedy=Remedy("lr", 0.005))`.
The message itself names no command-line option and no button; each screen words the remedy its own way
(the command line: "Try --lr 0.005.", see FLAG_WORDS; the window: "Try a learning rate of 0.005.", with a
button that sets it).
"""
from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any

from resnet_gui.text import sentence

log = logging.getLogger(__name__)

# Remedy kind -> what the command line says (a sentence; {value} is the remedy's value)
FLAG_WORDS = {
    "lr": "Try --lr {value:g}.",
    "batch_size": "Try --batch-size {value}.",
    "more_epochs": "To train more, resume it with more epochs (for example --epochs {value}).",
    "resume": "Resume with --resume {value!r}.",
    "device": "Use --device cpu or auto.",
    "allow_duplicate": "Use that model, or import it again with --allow-duplicate.",
    "weights_file": "Download {value}, or choose a local copy of that weights file with --weights-file.",
    "cifar10": "Or download it with --download, or choose a location that holds either with --data.",
    "cifar10_location": "Or choose a location that holds either with --data.",
    "data_folder": "Give it with --data PATH.",
}


@dataclass(frozen=True)
class Remedy:
    """What the user can do about an error: a kind (a key of FLAG_WORDS) and the value it suggests (a learning
    rate, a batch size, an epoch count, a run name)."""
    kind: str
    value: Any = None

    def flag_words(self) -> str:
        """The remedy as the command line says it."""
        return FLAG_WORDS[self.kind].format(value=self.value)

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value}

    @classmethod
    def from_json(cls, obj) -> Remedy | None:
        """None for anything that is not a remedy of a known kind (a newer engine's, a damaged line)."""
        if isinstance(obj, dict) and obj.get("kind") in FLAG_WORDS:
            return cls(obj["kind"], obj.get("value"))
        return None


def with_remedy(message: str, remedy: Remedy | None) -> str:
    """`message` as a sentence, followed by the remedy in the command line's words."""
    text = sentence(message)
    return f"{text} {remedy.flag_words()}" if remedy is not None and text else text


class ResnetGuiError(Exception):
    """Base class: an error whose message is meant for the user, never a traceback; `remedy` says what to do
    where an option or a control does it."""

    def __init__(self, message: str = "", remedy: Remedy | None = None):
        super().__init__(message)
        self.remedy = remedy


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
    """A download failed or its content did not match the expected checksum; `reason` is why in a few words
    ("this computer seems to be offline (could not look up example.org)"), for a shorter message than str()."""

    reason: str | None = None


class ExportError(ResnetGuiError):
    """A model could not be exported (a missing optional package, an output that would overwrite app files)."""


class OutputError(ResnetGuiError):
    """An output file the user named would replace a model, a run, or a file being read (core.paths.check_output)."""


class Cancelled(Exception):
    """The user asked to stop (a download, data preparation, a prediction run, training).

    Not a ResnetGuiError: it is not a failure, and callers report it as "stopped", not as an error.
    """


def user_message(exc: BaseException, *, remedy: bool = True) -> str:
    """One sentence (or a few) for a person, for any exception, with its remedy in the command line's words
    (remedy=False: without it, for a screen that words it its own way). Unexpected ones are logged with their
    traceback, and the message says where that log is."""
    if isinstance(exc, Cancelled):
        return "Stopped."
    if isinstance(exc, ResnetGuiError):
        return with_remedy(str(exc), exc.remedy if remedy else None)
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
