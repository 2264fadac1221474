"""Bundled files (demo model, sample images, icon) as package data, found the same way frozen or not.

The files live inside the package (resnet_gui/resources/), so a wheel or a plain `pip install .`
carries them. Frozen by PyInstaller, the spec collects them to the same relative place under
sys._MEIPASS. Names are relative POSIX paths; absolute paths and '..' are refused.
"""
from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath


def root() -> Path:
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS) / "resnet_gui" / "resources"
    return Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The bundled file `name` (a relative POSIX path such as 'samples/digit_3.png')."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in name:
        raise ValueError(f"resource names are relative paths inside resources/, got {name!r}")
    return root().joinpath(*rel.parts)
