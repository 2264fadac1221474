"""Why a job failed, as it crosses from a worker thread to the window: a Failure, never a string to search.

    failure = Failure.from_exception(exc)   # in the worker: the message in the window's words, the error's
    failure.message, failure.remedy          # kind, and what to do as data (core.errors.Remedy)

Core's messages name no command-line option and no control; the remedy is worded here the window's way
(the command line words it with core.errors.FLAG_WORDS), and the tab showing the failure may turn it into
a button (Train: "Use learning rate 0.005"; Models: "Import it again anyway").
"""
from __future__ import annotations

from dataclasses import dataclass

from resnet_gui.core.errors import Remedy, user_message
from resnet_gui.text import sentence

# Remedy kind -> what the window says (a sentence; {value} is the remedy's value)
WINDOW_WORDS = {
    "lr": "Try a learning rate of {value:g}.",
    "batch_size": "Try a batch size of {value}.",
    "more_epochs": "To train more, choose Train more epochs… in the Resume menu.",
    "resume": "Continue it with Resume.",
    "device": "Choose the CPU or Automatic as the device.",
    "allow_duplicate": "Use that model, or import it again anyway.",
    "weights_file": "Download them when online (Download in the Model box), or choose a local copy of the file "
                    "(Locate a file…).",
    "cifar10": "Or download it (Download CIFAR-10), or choose a location that holds either (Locate…).",
    "cifar10_location": "Or choose a location that holds either (Locate…).",
    "data_folder": "Choose it in the Data box.",
}


def window_text(message: str, remedy: Remedy | None) -> str:
    """`message` as a sentence, followed by the remedy in the window's words."""
    text = sentence(message)
    if remedy is None or not text or remedy.kind not in WINDOW_WORDS:
        return text
    return f"{text} {WINDOW_WORDS[remedy.kind].format(value=remedy.value)}"


@dataclass(frozen=True)
class Failure:
    message: str                   # what went wrong and what to do, in the window's words (sentences)
    kind: str = "error"            # the exception's class ("DatasetError", "OSError", …)
    remedy: Remedy | None = None   # what to do, as data: a tab may offer a button that does it

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """Any exception, as core.errors.user_message words it (an unexpected one is logged with its
        traceback), with the remedy in the window's words."""
        remedy = getattr(exc, "remedy", None)
        return cls(window_text(user_message(exc, remedy=False), remedy), type(exc).__name__, remedy)
