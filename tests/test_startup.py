"""Process start-up pieces shared with the frozen app: self-test, std streams, resources, display check."""
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_gui import resources
from resnet_gui.startup import ensure_std_streams


def test_self_test_from_source(isolated_home):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "resnet_gui", "--self-test"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("qt", "model", "predict", "export", "train", "checkpoint"):
        assert f"PASS {check}" in proc.stdout
    assert "(from source" in proc.stdout
    assert not (isolated_home / "models").exists()  # the self-test used its own temporary registry


def test_self_test_reports_failures_and_exits_non_zero(monkeypatch, capsys):
    from resnet_gui import selftest

    def broken(self):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(selftest.SelfTest, "train", broken)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from resnet_gui.cli import main

    assert selftest.SelfTest(main).run() == 1
    out = capsys.readouterr().out
    assert "FAIL train" in out and "simulated failure" in out and "self-test FAILED: train, checkpoint" in out


def test_missing_std_streams_go_to_a_log_file(isolated_home, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    ensure_std_streams()
    try:
        print("hello from a windowed build")
        sys.stderr.write("and its stderr\n")
        sys.stdout.flush()
    finally:
        sys.stdout.close()   # the process's stream for its lifetime; here only for this test
    log = (isolated_home / "logs" / "output.log").read_text()
    assert "hello from a windowed build" in log and "and its stderr" in log


@pytest.mark.parametrize("bad", ["/etc/passwd", "../secret", "samples/../../x", "", "a\\b"])
def test_resource_names_stay_inside_resources(bad):
    with pytest.raises(ValueError):
        resources.path(bad)


def test_resources_found_from_source_and_frozen(monkeypatch, tmp_path):
    assert resources.path("icons/app.png").is_file()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.path("samples/x.png") == tmp_path / "resnet_gui" / "resources" / "samples" / "x.png"


def test_damaged_settings_file_is_ignored(isolated_home):
    from resnet_gui.core.settings import Settings

    (isolated_home / "settings.json").write_text("{not json")
    s = Settings()
    assert s.get("theme", "system") == "system"
    s.set("theme", "dark")
    assert s.save() and Settings().get("theme") == "dark"


LDD_MISSING = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibweird.so.9 => not found
"""


def reachable(*_args):
    return None


def test_missing_xcb_libraries_become_package_names_for_debian_and_fedora(tmp_path):
    from resnet_gui.startup import display_problem, missing_libraries

    assert missing_libraries(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libweird.so.9"]
    plugins = {"xcb": tmp_path / "libqxcb.so"}
    problem = display_problem({"DISPLAY": ":0"}, "linux", ldd=lambda path: LDD_MISSING, plugins=plugins,
                              x_server=reachable)
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in problem
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in problem
    assert "libweird.so.9" in problem and "libxcb-cursor0" not in problem  # not Qt's misleading suggestion
    assert display_problem({"DISPLAY": ":0"}, "linux", ldd=lambda path: "\tlibc.so.6 => /lib/libc.so.6",
                           plugins=plugins, x_server=reachable) is None


PLUGINS = {"xcb": Path("libqxcb.so"), "wayland": Path("libqwayland.so"), "offscreen": Path("libqoffscreen.so"),
           "minimal": Path("libqminimal.so")}


def unreachable_x(display):
    return f"$DISPLAY={display} has no X server answering"


def unreachable_wayland(env):
    return "no Wayland compositor answers"


def test_no_display_is_said_and_windowless_platforms_pass():
    from resnet_gui.startup import display_problem

    def check(env, **kw):
        return display_problem(env, "linux", ldd=lambda path: "", plugins=PLUGINS,
                               **{"x_server": unreachable_x, "wayland": unreachable_wayland, **kw})

    assert "No display was found" in check({})
    assert "No display was found" in check({"QT_QPA_PLATFORM": "wayland"})
    assert check({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert check({"QT_QPA_PLATFORM": "minimal:enable_fonts"}) is None
    assert display_problem({}, "win32") is None
    assert check({"WAYLAND_DISPLAY": "wayland-0"}, wayland=reachable) is None


def test_qt_tries_the_same_platforms_in_the_same_order():
    from resnet_gui.startup import platform_candidates

    assert platform_candidates({"DISPLAY": ":0"}) == ["xcb"]
    assert platform_candidates({"WAYLAND_DISPLAY": ""}) == ["wayland", "xcb"]  # set, even empty (as Qt 6.11)
    assert platform_candidates({"XDG_SESSION_TYPE": "wayland"}) == ["wayland", "xcb"]
    assert platform_candidates({"XDG_SESSION_TYPE": "x11"}) == ["xcb"]
    assert platform_candidates({"QT_QPA_PLATFORM": "Wayland:opt=1; xcb"}) == ["wayland", "xcb"]


def test_a_display_that_does_not_answer_is_named_with_what_to_do():
    from resnet_gui.startup import display_problem

    def check(env, **kw):
        return display_problem(env, "linux", ldd=lambda path: "", plugins=PLUGINS,
                               **{"x_server": unreachable_x, "wayland": unreachable_wayland, **kw})

    x = check({"DISPLAY": ":93"})
    assert "$DISPLAY=:93 has no X server answering" in x and "desktop session" in x and "resnet-gui --help" in x
    both = check({"DISPLAY": ":93", "WAYLAND_DISPLAY": "w"})
    assert "no Wayland compositor answers and $DISPLAY=:93" in both
    assert check({"DISPLAY": ":93", "WAYLAND_DISPLAY": "w"}, wayland=reachable) is None  # Qt falls back: fine
    assert check({"DISPLAY": ":1", "WAYLAND_DISPLAY": "w"}, x_server=reachable) is None
    named = check({"QT_QPA_PLATFORM": "nosuch", "DISPLAY": ":1"}, x_server=reachable)
    assert "no platform plugin named 'nosuch'" in named and "minimal, offscreen, wayland, xcb" in named
    assert "Unset $QT_QPA_PLATFORM" in named
    assert check({"QT_QPA_PLATFORM": "nosuch;xcb", "DISPLAY": ":1"}, x_server=reachable) is None


def test_missing_wayland_libraries_are_named_once_the_compositor_answers():
    from resnet_gui.startup import display_problem

    ldd = "\tlibwayland-cursor.so.0 => not found\n"
    problem = display_problem({"WAYLAND_DISPLAY": "w", "QT_QPA_PLATFORM": "wayland"}, "linux", ldd=lambda p: ldd,
                              plugins=PLUGINS, wayland=reachable)
    assert "wayland platform plugin" in problem and "sudo apt install libwayland-cursor0" in problem


def test_the_wayland_socket_is_found_where_libwayland_looks(tmp_path):
    import socket

    from resnet_gui.startup import wayland_connection_problem

    env = {"XDG_RUNTIME_DIR": str(tmp_path), "WAYLAND_DISPLAY": "wayland-7"}
    assert "no Wayland compositor answers at " + str(tmp_path / "wayland-7") == wayland_connection_problem(env)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "wayland-7"))
        server.listen(1)
        assert wayland_connection_problem(env) is None
        assert wayland_connection_problem({"WAYLAND_DISPLAY": str(tmp_path / "wayland-7")}) is None  # absolute
    assert "$XDG_RUNTIME_DIR is not set" in wayland_connection_problem({"WAYLAND_DISPLAY": "wayland-7"})
    assert "(the default: $WAYLAND_DISPLAY is not set)" in wayland_connection_problem({"XDG_RUNTIME_DIR": "/nope"})


def test_a_display_that_hangs_is_given_up_on(monkeypatch):
    import threading

    from resnet_gui import startup

    release = threading.Event()
    try:
        answer = startup._within(0.2, lambda: release.wait(30) and None, "the X server on $DISPLAY=far:0")
    finally:
        release.set()
    assert answer == "the X server on $DISPLAY=far:0 did not answer within 0.2 s"


@pytest.mark.skipif(not sys.platform.startswith("linux") or not ctypes.util.find_library("xcb"),
                    reason="needs libxcb")
def test_bad_display_names_are_told_apart_by_libxcb():
    from resnet_gui.startup import x_connection_problem

    assert x_connection_problem(None) == "$DISPLAY is not set"
    assert x_connection_problem("!!") == "$DISPLAY=!! is not a valid display name"


def test_the_app_without_a_display_exits_1_with_a_sentence_not_a_qt_abort(isolated_home):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "resnet_gui"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "No display was found" in proc.stderr and "Traceback" not in proc.stderr
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import tasks

    assert tasks.check_display(Path(sys.executable), env) == 1  # `tasks.py run` checks the same first


def test_warnings_and_errors_go_to_the_rotating_log_with_tracebacks(isolated_home):
    import logging
    import logging.handlers

    from resnet_gui.startup import setup_logging

    handler = setup_logging()
    try:
        assert isinstance(handler, logging.handlers.RotatingFileHandler) and handler.backupCount >= 1
        assert setup_logging() is handler  # once per file
        try:
            raise ValueError("broken thing")
        except ValueError:
            logging.getLogger("resnet_gui.ui.common.workers").warning("task scan failed", exc_info=True)
        logging.getLogger("PIL").info("library chatter stays out")
        handler.flush()
        text = (isolated_home / "logs" / "resnet-gui.log").read_text()
        assert "task scan failed" in text and "Traceback" in text and "ValueError: broken thing" in text
        assert "library chatter" not in text
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_a_window_closed_at_once_exits_cleanly_while_the_first_model_opens(isolated_home):
    """ui/app.py opens the first model in a thread while the window is built; quitting as soon as the window is
    shown (the start-up probe's "exit") aborted the frozen app at shutdown ("terminate called without an active
    exception", exit -6) while ONNX Runtime was still making its session. The app now waits for that thread."""
    from resnet_gui.core.models.demo import ensure_demo_model
    from resnet_gui.core.models.registry import Registry

    ensure_demo_model(Registry())
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RESNET_GUI_STARTUP_PROBE="exit")
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-m", "resnet_gui"], capture_output=True, text=True, timeout=120,
                              env=env)
        assert proc.returncode == 0 and "RESNET_GUI_WINDOW_SHOWN" in proc.stdout, proc.stderr
        assert "terminate called" not in proc.stderr
