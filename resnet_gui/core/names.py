"""Names that become file names (models, runs): one validation rule for all of them.

A name from the user or from a file's content becomes `<folder>/<name>.pth` only after this check, so
no name can point outside its folder (no separators, no '..', no leading dot).
"""
from __future__ import annotations

import re

from .errors import RegistryError

SUFFIX = ".pth"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\- ]{0,99}$")


def validate_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if name.lower().endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, spaces, '.', '_', '-' or '+' "
                            "(at most 100 characters, starting with a letter or digit)")
    return name
