"""Process set-up shared by `python -m resnet_gui`, the console script and the frozen executable."""
from __future__ import annotations

import sys


def ensure_std_streams() -> None:
    """Windowed builds start with sys.stdout/sys.stderr = None; libraries that print would crash.
    Point the missing streams at a log file in the user log folder (never into the bundle)."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    try:
        from resnet_gui.core.paths import log_dir

        stream = open(log_dir() / "output.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    except OSError:
        import os

        stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream


def prepare_process() -> None:
    """Call first thing in every entry point."""
    import multiprocessing

    multiprocessing.freeze_support()  # a DataLoader worker of the frozen app starts here and never returns
    ensure_std_streams()
