"""One way to find bundled files (demo model, sample images, icons), frozen or not.

Unfrozen, resources/ sits next to the resnet_gui package (a source checkout or editable install).
Frozen by PyInstaller, the spec collects it to the same relative place under sys._MEIPASS.
"""
from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath


def root() -> Path:
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        return Path(sys._MEIPASS) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def path(name: str) -> Path:
    """The bundled file `name` (a relative POSIX path such as 'samples/digit_3.png')."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in name:
        raise ValueError(f"resource names are relative paths inside resources/, got {name!r}")
    return root().joinpath(*rel.parts)

