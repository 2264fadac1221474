"""Process set-up shared by `python -m resnet_gui`, the console script and the frozen executable:
std streams, logging to a rotating file, and the display check that runs before any QApplication.

    python -m resnet_gui.startup check-display    # exit 1 with the reason when no window can open
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

LOG_FILE = "resnet-gui.log"
LOG_BYTES, LOG_BACKUPS = 2_000_000, 3
# soname -> (Debian/Ubuntu package, Fedora package) for what Qt's xcb platform plugin loads
XCB_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}
NO_DISPLAY = ("No display was found ($DISPLAY and $WAYLAND_DISPLAY are not set), so the window cannot open. Start "
              "the app from a desktop session, or use the command line (resnet-gui --help lists predict, train and "
              "models).")
WINDOWLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


# ---- std streams and logging -------------------------------------------------------------------------
def ensure_std_streams() -> None:
    """Windowed builds start with sys.stdout/sys.stderr = None; libraries that print would crash.
    Point the missing streams at a log file in the user log folder (never into the bundle)."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    try:
        from resnet_gui.core.paths import log_dir

        stream = open(log_dir() / "output.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream


def setup_logging() -> logging.Handler | None:
    """Warnings and errors of every library, and the app's own notes, with tracebacks, into
    <log folder>/resnet-gui.log (rotated at 2 MB, 3 kept). Uncaught exceptions in any thread are logged
    too. Calling it again for the same file changes nothing."""
    from resnet_gui.core.paths import log_dir

    try:
        path = log_dir() / LOG_FILE
        root = logging.getLogger()
        for existing in root.handlers:
            if getattr(existing, "baseFilename", None) == str(path):
                return existing
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                       encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)   # other libraries: warnings and errors only
    logging.getLogger("resnet_gui").setLevel(logging.INFO)
    _log_uncaught_exceptions()
    return handler


def _log_uncaught_exceptions() -> None:
    log = logging.getLogger("resnet_gui")
    if getattr(sys.excepthook, "_resnet_gui", False):
        return
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def hook(exc_type, exc, tb):
        if not issubclass(exc_type, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(exc_type, exc, tb))
        previous_hook(exc_type, exc, tb)

    def thread_hook(args):
        if args.exc_type is not SystemExit:
            log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        previous_thread_hook(args)

    hook._resnet_gui = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    threading.excepthook = thread_hook


def prepare_process() -> None:
    """Call first thing in every entry point."""
    import multiprocessing

    multiprocessing.freeze_support()  # a DataLoader worker of the frozen app starts here and never returns
    ensure_std_streams()
    setup_logging()


# ---- can a window open? --------------------------------------------------------------------------------
def xcb_plugin() -> Path | None:
    """Qt's X11 platform plugin inside the installed PySide6 (found without importing Qt)."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def run_ldd(path: Path) -> str:
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""  # no ldd (not glibc): let Qt report for itself


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ldd could not resolve, in order, once each."""
    found = re.findall(r"^\s*(\S+)\s+=>\s+not found", ldd_output, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def install_advice(missing: list[str]) -> str:
    debian = list(dict.fromkeys(XCB_PACKAGES[m][0] for m in missing if m in XCB_PACKAGES))
    fedora = list(dict.fromkeys(XCB_PACKAGES[m][1] for m in missing if m in XCB_PACKAGES))
    unknown = [m for m in missing if m not in XCB_PACKAGES]
    lines = [f"The window cannot open: Qt's X11 (xcb) platform plugin needs system libraries that are not "
             f"installed: {', '.join(missing)}. Install them, then start the app again:"]
    if debian:
        lines.append(f"  Debian/Ubuntu: sudo apt install {' '.join(debian)}")
        lines.append(f"  Fedora:        sudo dnf install {' '.join(fedora)}")
    if unknown:
        lines.append(f"  (find the package that provides {', '.join(unknown)} with your package manager)")
    lines.append("The command line works without them (resnet-gui --help).")
    return "\n".join(lines)


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                    ldd: Callable[[Path], str] = run_ldd, plugin: Path | None = None) -> str | None:
    """Why no window can open here (no display, or libraries Qt's xcb plugin needs are missing), or None.
    Only Linux is checked; offscreen and other windowless Qt platforms are always fine."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip().lower()
    if qpa in WINDOWLESS_PLATFORMS:
        return None
    display, wayland = env.get("DISPLAY"), env.get("WAYLAND_DISPLAY")
    if qpa.startswith("wayland"):
        return None if wayland else NO_DISPLAY
    if not display and not wayland:
        return NO_DISPLAY
    if not qpa and wayland:
        return None  # Qt uses its Wayland plugin
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(ldd(plugin))
    return install_advice(missing) if missing else None


def main(argv: list[str]) -> int:
    if argv[:1] != ["check-display"]:
        print(__doc__)
        return 2
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
