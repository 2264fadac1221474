"""Names that become file names (models, runs): one validation rule for all of them.

A name from the user or from a file's content becomes `<folder>/<name>.pth` only after this check, so
no name can point outside its folder (no separators, no '..', no leading dot).
"""
from __future__ import annotations

import os
import re

from .errors import RegistryError

SUFFIX = ".pth"
NAME_MAX_BYTES = 255  # one path component on Linux and macOS file systems (ext4, XFS, btrfs, APFS)
MAX_NAME = 100
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\- ]{0,99}$")
# Names Windows reserves for devices, with or without an extension ("aux.txt" too): refused everywhere so a
# registry copied between machines keeps working.
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def validate_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if name.lower().endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if not isinstance(name, str) or not NAME_RE.match(name) or name.endswith((".", " ")):
        raise RegistryError(f"invalid model name {name[:120]!r}: use letters, digits, spaces, '.', '_', '-' or '+' "
                            f"(at most {MAX_NAME} characters, starting with a letter or digit, not ending with "
                            "a dot or a space)")
    if name.split(".")[0].strip().lower() in WINDOWS_RESERVED:
        raise RegistryError(f"invalid model name {name!r}: Windows reserves it for a device; choose another name")
    return name


def name_from(text: str, *, fallback: str = "model", max_length: int = MAX_NAME) -> str:
    """A valid name made from any text (a file name, a folder name): other characters become '_', and it is
    shortened to max_length."""
    cleaned = re.sub(r"[^A-Za-z0-9._+\- ]+", "_", text or "").strip(" ._-+")[:max_length].rstrip(" .")
    if not cleaned or not cleaned[0].isalnum():
        cleaned = fallback
    try:
        return validate_name(cleaned)
    except RegistryError:  # a reserved device name
        return validate_name(f"{fallback}-{cleaned}"[:max_length].rstrip(" ."))


def fit_bytes(text: str, max_bytes: int) -> str:
    """`text` cut to at most max_bytes in the file-system encoding (a 245-byte name can be 81 characters),
    never inside a character."""
    kept, used = [], 0
    for ch in text:
        try:
            size = len(os.fsencode(ch))
        except UnicodeEncodeError:  # a lone surrogate no file name can hold
            ch, size = "_", 1
        if used + size > max_bytes:
            break
        kept.append(ch)
        used += size
    return "".join(kept)
