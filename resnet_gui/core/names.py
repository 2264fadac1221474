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


RULE = (f"use letters, digits, spaces, '.', '_', '-' or '+' (at most {MAX_NAME} characters, starting with a "
        "letter or digit, not ending with a dot or a space)")


def _bare(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    return name[: -len(SUFFIX)] if name.lower().endswith(SUFFIX) else name


def name_fault(name) -> str | None:
    """Why `name` cannot be a name, as a clause that follows the name ("has ':', '/' and '?': use letters, …",
    "starts with '.': …"), or None. The clause never contains the name: callers quote it whole themselves."""
    name = _bare(name)
    bad = list(dict.fromkeys(c for c in name if not re.fullmatch(r"[A-Za-z0-9._+\- ]", c)))
    if bad:
        shown = [repr(c) for c in bad[:8]] + (["…"] if len(bad) > 8 else [])
        what = "has " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1])
    elif len(name) > MAX_NAME:
        what = f"is longer than {MAX_NAME} characters"
    elif not name[:1].isalnum():
        what = f"starts with {name[:1]!r}" if name else "is empty"
    elif name.endswith((".", " ")):
        what = "ends with a dot" if name.endswith(".") else "ends with a space"
    elif name.split(".")[0].strip().lower() in WINDOWS_RESERVED:
        return "is a name Windows reserves for a device: choose another name"
    else:
        return None
    return f"{what}: {RULE}"


def validate_name(name: str) -> str:
    """`name` without surrounding spaces and a .pth suffix; RegistryError (the name quoted whole, then what is
    wrong with it) when it cannot be a name."""
    fault = name_fault(name)
    name = _bare(name)
    if fault is not None:
        raise RegistryError(f"invalid model name {name[:120]!r}: it {fault}")
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
