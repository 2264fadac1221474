"""Red team, part 4: the desktop the app starts on. A display that does not answer, a Wayland socket with no
compositor behind it, a platform plugin that does not exist: each ends in one sentence and exit status 1,
never Qt's abort (exit 134). Each case runs the app in a subprocess, as a user starts it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_helpers import free_display, no_traceback

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland are Linux's")
DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE",
                     "XDG_RUNTIME_DIR")


def start_app(home: Path, runtime: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARIABLES}
    env.update(RESNET_GUI_HOME=str(home), XDG_RUNTIME_DIR=str(runtime), RESNET_GUI_STARTUP_PROBE="exit",
               **variables)
    return subprocess.run([sys.executable, "-m", "resnet_gui"], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def runtime(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


def refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert no_traceback(proc) and "no Qt platform plugin could be initialized" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "resnet-gui --help" in proc.stderr  # and what to do instead


def test_a_display_with_no_x_server_is_said_instead_of_aborting(isolated_home, runtime):
    display = free_display()
    refused(start_app(isolated_home, runtime, DISPLAY=display), f"$DISPLAY={display} has no X server answering")


def test_a_wayland_display_with_no_compositor_is_said_instead_of_aborting(isolated_home, runtime):
    refused(start_app(isolated_home, runtime, WAYLAND_DISPLAY="wayland-93"),
            f"no Wayland compositor answers at {runtime / 'wayland-93'}", "$DISPLAY is not set")


def test_a_platform_plugin_that_does_not_exist_is_said_instead_of_aborting(isolated_home, runtime):
    refused(start_app(isolated_home, runtime, QT_QPA_PLATFORM="nosuch", DISPLAY=free_display()),
            "no platform plugin named 'nosuch'", "xcb", "Unset $QT_QPA_PLATFORM")


def test_windowless_platforms_need_no_display(isolated_home, runtime):
    proc = start_app(isolated_home, runtime, QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0 and "RESNET_GUI_WINDOW_SHOWN" in proc.stdout, proc.stderr[-2000:]


@pytest.fixture
def xvfb():
    """A virtual X server on a display number it picks itself."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb)")
    from resnet_gui.startup import missing_libraries, platform_plugins, run_ldd

    plugin = (platform_plugins(os.environ) or {}).get("xcb")
    if plugin is None or missing_libraries(run_ldd(plugin)):
        pytest.skip("Qt's xcb plugin cannot load here (its system libraries are missing)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "1024x768x24"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()  # written once the server accepts connections
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_display_that_answers_opens_the_window(isolated_home, runtime, xvfb):
    proc = start_app(isolated_home, runtime, DISPLAY=xvfb)
    assert proc.returncode == 0 and "RESNET_GUI_WINDOW_SHOWN" in proc.stdout, proc.stderr[-2000:]
    screen = start_app(isolated_home, runtime, DISPLAY=f"{xvfb}.4")  # a screen that server does not have
    refused(screen, f"$DISPLAY={xvfb}.4 names a screen that display does not have")
