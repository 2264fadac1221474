"""Terminal output shared by the commands: errors on stderr, text made safe for a terminal."""
from __future__ import annotations

import sys

from resnet_gui import APP_ID


def err(message: str) -> None:
    print(f"{APP_ID}: error: {message}", file=sys.stderr)
