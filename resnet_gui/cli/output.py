"""Terminal output shared by the commands: errors on stderr, text made safe for a terminal, sizes."""
from __future__ import annotations

import re
import sys

from resnet_gui import APP_ID

# C0 and C1 control characters and DEL (escape sequences could rewrite the terminal), and the Unicode
# bidirectional overrides (they reorder what is shown). Shown as \x1b, \u202e, ...
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(text: object) -> str:
    """`text` with control characters escaped, so a class or file name cannot drive the terminal."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def err(message: str) -> None:
    print(f"{APP_ID}: error: {safe(message)}", file=sys.stderr)
