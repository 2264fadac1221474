"""Red team, part 4: the desktop the app starts on. A display that does not answer, a Wayland socket with no
compositor behind it, a platform plugin that does not exist: each ends in one sentence and exit status 1,
never Qt's abort (exit 134). Each case runs the app in a subprocess, as a user starts it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_helpers import MEMORY_LIMIT_MB, free_display, no_traceback

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland are Linux's")
DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE",
                     "XDG_RUNTIME_DIR")


def start_app(home: Path, runtime: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARIABLES}
    env.update(RESNET_GUI_HOME=str(home), XDG_RUNTIME_DIR=str(runtime), RESNET_GUI_STARTUP_PROBE="exit",
               **variables)
    return subprocess.run([sys.executable, "-m", "resnet_gui"], capture_output=True, text=True, env=env, timeout=120,
                          preexec_fn=_memory_limit)


def _memory_limit() -> None:
    """In the app's process: the suite's memory budget (a settings file must not drive it to gigabytes)."""
    import resource

    limit = MEMORY_LIMIT_MB * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


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


# ---- the settings file ------------------------------------------------------------------------------------
def settings_path(home: Path) -> Path:
    return home / "settings.json"


@pytest.mark.parametrize("kind", ["link_to_dev_zero", "fifo", "too_large"])
def test_a_settings_file_that_is_not_a_small_regular_file_is_not_read(isolated_home, runtime, kind):
    path = settings_path(isolated_home)
    if kind == "link_to_dev_zero":
        path.symlink_to("/dev/zero")  # was read to the end: 2.8-3.9 GB, then "ran out of memory"
    elif kind == "fifo":
        os.mkfifo(path)  # was opened for reading with no writer: the app hung before its window
    else:
        path.write_text('{"theme": "dark", "pad": "' + "x" * (2 << 20) + '"}')
    proc = start_app(isolated_home, runtime, QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0 and "RESNET_GUI_WINDOW_SHOWN" in proc.stdout, proc.stderr[-2000:]
    log = (isolated_home / "logs" / "resnet-gui.log").read_text()
    assert f"ignoring settings file {path}: " + ("larger than" if kind == "too_large" else "not a regular file") in log


def test_the_settings_file_is_read_through_a_link_to_a_regular_file(isolated_home, tmp_path):
    from resnet_gui.core.settings import Settings

    real = tmp_path / "elsewhere.json"
    real.write_text('{"theme": "dark"}')
    settings_path(isolated_home).symlink_to(real)
    assert Settings().get("theme") == "dark"


MALFORMED = {
    "window.geometry": "!!!notbase64",
    "window.tab": 10**22,
    "theme": ["dark"],
    "predict.unsure_below": float("inf"),
    "evaluate.tta": "yes",
    "evaluate.folder": ["a", "b"],
    "train.folder": {"path": "x"},
    "train.cifar_location": "a\x00b",
    "train.gpus": 2.5,
    "train.mode": "nonsense",
    "predict.model": 5,
}
FORM = {"epochs": 10**24, "hflip": "no", "lr": "abc", "weights_file": 5, "seed": 2**40, "batch_size": 3.0,
        "device": ["cpu"], "arch": "resnet18_cifar", "optimizer": "sgd", "label_smoothing": 0.2, "unknown": 1}


@pytest.mark.parametrize("key", sorted(MALFORMED))
def test_a_malformed_setting_is_dropped_with_a_log_line(isolated_home, key, caplog):
    from resnet_gui.core.settings import Settings

    settings_path(isolated_home).write_text(json.dumps({key: MALFORMED[key], "theme": "dark"} if key != "theme"
                                                       else {key: MALFORMED[key]}))
    settings = Settings()
    assert settings.get(key, "fallback") == "fallback" and key not in settings.data
    assert f"ignoring setting {key} in " in caplog.text
    assert key == "theme" or settings.get("theme") == "dark"  # the others are kept


def test_a_number_as_window_geometry_is_dropped(isolated_home):
    from resnet_gui.core.settings import Settings

    settings_path(isolated_home).write_text('{"window.geometry": 12, "window.tab": 2}')
    assert Settings().get("window.geometry") is None and Settings().get("window.tab") == 2


def test_every_key_the_app_reads_or_writes_is_declared_in_the_schema():
    import re

    from resnet_gui.core.settings import SCHEMA, Settings

    ui = Path(__file__).resolve().parents[2] / "resnet_gui" / "ui"
    used = set()
    for module in ui.rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        used |= set(re.findall(r"settings\.(?:get|set)\(\s*\"([^\"]+)\"", text))
        used |= set(re.findall(r"^[A-Z_]+_SETTING = \"([^\"]+)\"", text, flags=re.MULTILINE))
    assert used and used <= set(SCHEMA), used - set(SCHEMA)
    with pytest.raises(KeyError, match="not declared"):
        Settings().get("undeclared.key")


def test_a_saved_training_form_keeps_only_what_trainconfig_accepts(isolated_home, caplog):
    from resnet_gui.core.settings import Settings
    from resnet_gui.ui.train.form import saved_forms

    settings_path(isolated_home).write_text(json.dumps({"train.forms": {"finetune": FORM, "bogus": {"epochs": 3}}}))
    forms = saved_forms(Settings())
    assert forms == {"finetune": {"optimizer": "sgd", "label_smoothing": 0.2, "seed": 2**40}}
    for name in ("epochs", "hflip", "lr", "weights_file", "batch_size", "device", "arch", "unknown"):
        assert f"ignoring saved training setting {name} of recipe finetune" in caplog.text
    assert "unknown recipe 'bogus'" in caplog.text


def test_the_app_starts_with_every_malformed_value_at_once(isolated_home, runtime):
    settings_path(isolated_home).write_text(json.dumps(
        {**MALFORMED, "window.tab": 10**22, "train.mode": "finetune",
         "train.forms": {"finetune": FORM, "scratch": {"epochs": -1, "workers": [1]}}}))
    proc = start_app(isolated_home, runtime, QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0 and "RESNET_GUI_WINDOW_SHOWN" in proc.stdout, proc.stderr[-2000:]
    assert no_traceback(proc)
