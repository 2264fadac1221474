"""Messages in the words of the screen they appear on.

Core messages serve the command line and the window alike, so some name a command-line option next to
the window's control ("the ImageNet weights field's Choose… button, or --weights-file on the command
line"). In the window, only the window's words are shown; the command line keeps the original.
"""
from __future__ import annotations

import re

from resnet_gui.text import sentence

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    # "(the … button, or --flag on the command line)" -> "(the … button)"
    (re.compile(r",? or (?:with )?--[a-z][a-z0-9-]*(?: [A-Z_]+)?(?: on the command line)?(?=\))"), ""),
    # "a folder dataset needs a folder (--data PATH)" -> "a folder dataset needs a folder"
    (re.compile(r" \(--[a-z][a-z0-9-]*(?: [A-Z_]+)?\)"), ""),
    (re.compile(r"try --lr ([0-9.e-]+)"), r"try a learning rate of \1"),
    (re.compile(r"try --batch-size (\d+)"), r"try a batch size of \1"),
    (re.compile(r"\(for example --epochs \d+\)"), "(Resume, then Train more epochs…)"),
    (re.compile(r"resume with --resume '[^']*'"), "continue it with Resume"),
    (re.compile(r"use --device cpu or auto"), "choose the CPU or Automatic as the device"),
    (re.compile(r"import it again with --allow-duplicate"), "import it again anyway"),
]


def for_screen(message: str) -> str:
    """`message` with command-line wording replaced by what the window shows."""
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message)
    return message


def screen_sentence(message: str) -> str:
    """`message` in the window's words, as a sentence."""
    return sentence(for_screen(message))


THRESHOLD_SETTING = "predict.unsure_below"   # the reader's "not sure below", shared by Predict and Evaluate


def threshold_from(settings) -> float:
    """The persisted threshold (a fraction), or the default when missing or odd."""
    from resnet_gui.core.inference.prediction import DEFAULT_THRESHOLD

    return float(settings.get(THRESHOLD_SETTING, DEFAULT_THRESHOLD))  # the schema keeps it within 0-1
