"""Process start-up pieces shared with the frozen app: self-test, std streams, resources."""
import os
import subprocess
import sys

import pytest

from resnet_gui import resources
from resnet_gui.startup import ensure_std_streams


def test_self_test_from_source(isolated_home):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "resnet_gui", "--self-test"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("qt", "model", "predict", "train", "checkpoint"):
        assert f"PASS {check}" in proc.stdout
    assert "(from source" in proc.stdout
    assert not (isolated_home / "models").exists()  # the self-test used its own temporary registry


def test_self_test_reports_failures_and_exits_non_zero(monkeypatch, capsys):
    from resnet_gui import selftest

    def broken(self):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(selftest.SelfTest, "train", broken)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert selftest.SelfTest().run() == 1
    out = capsys.readouterr().out
    assert "FAIL train" in out and "simulated failure" in out and "self-test FAILED: train, checkpoint" in out


def test_missing_std_streams_go_to_a_log_file(isolated_home, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    ensure_std_streams()
    print("hello from a windowed build")
    sys.stderr.write("and its stderr\n")
    sys.stdout.flush()
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
