"""Process set-up shared by `python -m resnet_gui`, the console script and the frozen executable:
std streams, logging to a rotating file, and the display check that runs before any QApplication.

    python -m resnet_gui.startup check-display    # exit 1 with the reason when no window can open
"""
from __future__ import annotations

import ctypes
import logging
import logging.handlers
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

LOG_FILE = "resnet-gui.log"
LOG_BYTES, LOG_BACKUPS = 2_000_000, 3
# soname -> (Debian/Ubuntu package, Fedora package) for what Qt's xcb and wayland platform plugins load
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
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}
NO_DISPLAY = ("No display was found ($DISPLAY and $WAYLAND_DISPLAY are not set), so the window cannot open. Start "
              "the app from a desktop session, or use the command line (resnet-gui --help lists predict, train and "
              "models).")
CONNECT_TIMEOUT_S = 10.0  # how long a display may take to answer (Qt would wait as long, or longer)
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
# Qt picks its platform plugin from $QT_QPA_PLATFORM ("name[:options];fallback;..."), else "wayland;xcb" when
# $WAYLAND_DISPLAY is set (even empty) or $XDG_SESSION_TYPE is "wayland", else "xcb" (measured on PySide6
# 6.11), and aborts the process (exit 134) when none of them starts. Each candidate is tried here the way Qt
# will: its plugin exists, its display answers, its libraries are installed.
def run_ldd(path: Path) -> str:
    try:
        return subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""  # no ldd (not glibc): let Qt report for itself


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ldd could not resolve, in order, once each."""
    found = re.findall(r"^\s*(\S+)\s+=>\s+not found", ldd_output, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def install_advice(missing: list[str], plugin: str = "xcb") -> str:
    debian = list(dict.fromkeys(XCB_PACKAGES[m][0] for m in missing if m in XCB_PACKAGES))
    fedora = list(dict.fromkeys(XCB_PACKAGES[m][1] for m in missing if m in XCB_PACKAGES))
    unknown = [m for m in missing if m not in XCB_PACKAGES]
    kind = "X11 (xcb)" if plugin == "xcb" else plugin
    lines = [f"The window cannot open: Qt's {kind} platform plugin needs system libraries that are not "
             f"installed: {', '.join(missing)}. Install them, then start the app again:"]
    if debian:
        lines.append(f"  Debian/Ubuntu: sudo apt install {' '.join(debian)}")
        lines.append(f"  Fedora:        sudo dnf install {' '.join(fedora)}")
    if unknown:
        lines.append(f"  (find the package that provides {', '.join(unknown)} with your package manager)")
    lines.append("The command line works without them (resnet-gui --help).")
    return "\n".join(lines)


def platform_candidates(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order."""
    names = [part.split(":")[0].strip().lower() for part in env.get("QT_QPA_PLATFORM", "").split(";")]
    names = [name for name in names if name]
    if names:
        return names
    return ["wayland", "xcb"] if "WAYLAND_DISPLAY" in env or env.get("XDG_SESSION_TYPE") == "wayland" else ["xcb"]


def platform_plugins(env: Mapping[str, str]) -> dict[str, Path] | None:
    """Qt's platform plugins by key ("xcb", "wayland-egl", ...) -> file, from the folders Qt searches (its
    metadata is read without loading the library), or None when that cannot be found out."""
    try:
        from PySide6.QtCore import QLibraryInfo, QPluginLoader
    except ImportError:
        return None
    folders = [Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"])] if env.get("QT_QPA_PLATFORM_PLUGIN_PATH") else []
    folders += [Path(p) / "platforms" for p in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    folders += [Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms",
                Path(sys.executable).parent / "platforms"]
    plugins: dict[str, Path] = {}
    for folder in folders:
        try:
            files = sorted(f for f in folder.iterdir() if f.suffix in (".so", ".dll", ".dylib"))
        except OSError:
            continue
        for file in files:
            meta = QPluginLoader(str(file)).metaData()
            if str(meta.get("IID", "")).startswith("org.qt-project.Qt.QPA.QPlatformIntegrationFactoryInterface"):
                for key in meta.get("MetaData", {}).get("Keys", []):
                    plugins.setdefault(str(key).lower(), file)
    return plugins or None


def _within(seconds: float, attempt: Callable[[], str | None], what: str) -> str | None:
    """attempt() in a thread (a display on an unreachable host can block for minutes in connect)."""
    answer: list[str | None] = []
    thread = threading.Thread(target=lambda: answer.append(attempt()), name="display-check", daemon=True)
    thread.start()
    thread.join(seconds)
    return answer[0] if answer else f"{what} did not answer within {seconds:g} s"


# xcb_connection_has_error() codes (xcb.h) that say more than "nothing answers"
XCB_ERRORS = {5: "is not a valid display name", 6: "names a screen that display does not have"}


def x_connection_problem(display: str | None, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why no X server can be reached at `display` (xcb_connect, as Qt's xcb plugin does), or None."""
    if not display:
        return "$DISPLAY is not set"
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None  # the plugin's library check names it
    xcb.xcb_connect.restype = xcb.xcb_get_setup.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.argtypes = xcb.xcb_disconnect.argtypes = xcb.xcb_get_setup.argtypes = \
        xcb.xcb_setup_roots_length.argtypes = [ctypes.c_void_p]

    def attempt() -> str | None:
        screen = ctypes.c_int(0)
        connection = xcb.xcb_connect(display.encode(), ctypes.byref(screen))
        code = xcb.xcb_connection_has_error(connection)
        if code == 0 and screen.value >= xcb.xcb_setup_roots_length(xcb.xcb_get_setup(connection)):
            code = 6  # Qt refuses a screen number the server does not have
        xcb.xcb_disconnect(connection)
        if code == 0:
            return None
        return f"$DISPLAY={display} {XCB_ERRORS.get(code, 'has no X server answering (or refuses this user)')}"
    return _within(timeout, attempt, f"the X server on $DISPLAY={display}")


def wayland_connection_problem(env: Mapping[str, str], timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why no Wayland compositor can be reached (its socket, found as libwayland-client finds it), or None."""
    if env.get("WAYLAND_SOCKET"):
        return None  # a connection handed over by the parent process
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"  # libwayland-client's default
    if not os.path.isabs(name):
        if not env.get("XDG_RUNTIME_DIR"):
            return "$XDG_RUNTIME_DIR is not set, so the Wayland compositor's socket cannot be found"
        name = os.path.join(env["XDG_RUNTIME_DIR"], name)

    def attempt() -> str | None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(name)
            return None
        except OSError:
            unset = "" if env.get("WAYLAND_DISPLAY") else " (the default: $WAYLAND_DISPLAY is not set)"
            return f"no Wayland compositor answers at {name}{unset}"
    return _within(timeout, attempt, f"the Wayland compositor at {name}")


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                    ldd: Callable[[Path], str] = run_ldd, plugins: Mapping[str, Path] | None = None,
                    x_server: Callable[[str | None], str | None] = x_connection_problem,
                    wayland: Callable[[Mapping[str, str]], str | None] = wayland_connection_problem) -> str | None:
    """Why no window can open here, in sentences that say what to do, or None. Only Linux is checked; a
    windowless Qt platform (offscreen, minimal, ...) needs no display."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    plugins = platform_plugins(env) if plugins is None else plugins
    unknown: list[str] = []
    unreachable: list[str] = []
    advice = None
    for name in platform_candidates(env):
        if plugins is not None and name not in plugins:
            unknown.append(name)
            continue
        if name in WINDOWLESS_PLATFORMS:
            return None
        if name == "xcb":
            reason = x_server(env.get("DISPLAY"))
        elif name.startswith("wayland"):
            reason = wayland(env)
        else:
            return None  # a plugin of its own: let Qt try it
        if reason is not None:
            unreachable.append(reason)
            continue
        missing = missing_libraries(ldd(plugins[name])) if plugins is not None else []
        if not missing:
            return None
        advice = advice or install_advice(missing, name)
    if advice:
        return advice
    if not unknown and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return NO_DISPLAY
    reasons = [f"Qt has no platform plugin named {', '.join(map(repr, unknown))} ($QT_QPA_PLATFORM; it has "
               f"{', '.join(sorted(plugins or ()))})"] if unknown else []
    reasons += dict.fromkeys(unreachable)
    todo = ("Unset $QT_QPA_PLATFORM or set it to one of those plugins" if not unreachable else
            "Start the app from a working desktop session (or correct $DISPLAY, $WAYLAND_DISPLAY or "
            "$QT_QPA_PLATFORM)")
    return (f"The window cannot open: {' and '.join(reasons)}. {todo}, or use the command line (resnet-gui "
            "--help lists predict, train and models).")


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
