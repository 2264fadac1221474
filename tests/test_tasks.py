"""tasks.py: `run` installs what running needs and `test` adds the rest, never reinstalling when switching; pip's
output goes to a log file while the terminal shows one line of progress."""
import io
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402

FAKE_PIP = """
import sys
for name in ("torch", "numpy", "pillow"):
    print(f"Collecting {name}")
    print(f"  Downloading {name}-1.0-py3-none-any.whl (1.0 MB)")
    print("     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 1.0/1.0 MB 10.0 MB/s eta 0:00:00")
print("Installing collected packages: torch, numpy, pillow")
if len(sys.argv) > 1:
    print("ERROR: No matching distribution found for torch==99")
    sys.exit(1)
print("Successfully installed numpy-1.0 pillow-1.0 torch-1.0")
"""


def test_pip_output_goes_to_the_log_and_one_line_of_progress(tmp_path):
    log, out = tmp_path / "pip.log", io.StringIO()
    assert tasks.pip_quietly([sys.executable, "-c", FAKE_PIP], log, out) == 0
    assert log.read_text().count("\n") == 11 and "eta 0:00:00" in log.read_text()
    shown = out.getvalue()
    assert shown.count("\n") == 2 and "3 packages found, 3 downloaded" in shown and "eta" not in shown
    assert shown.endswith("done: 3 packages installed.\n")
    out = io.StringIO()
    assert tasks.pip_quietly([sys.executable, "-c", FAKE_PIP, "fail"], log, out) == 1
    assert "No matching distribution found for torch==99" in out.getvalue() and str(log) in out.getvalue()


def test_run_needs_less_than_test_and_switching_never_reinstalls(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "STAMP", tmp_path / ".installed")
    monkeypatch.setattr(tasks, "PY", Path(sys.executable))  # "exists": no new venv
    installs = []
    monkeypatch.setattr(tasks, "pip_quietly", lambda command, log: installs.append(command[-1]) or 0)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no venv is created"))
    tasks.ensure_venv(tasks.RUN_EXTRAS)
    assert installs == [str(tasks.ROOT)]  # the app alone: no pytest, ruff, PyInstaller
    tasks.ensure_venv(tasks.RUN_EXTRAS)
    tasks.ensure_venv(tasks.TEST_EXTRAS)
    assert installs[1:] == [f"{tasks.ROOT}[dev,test]"] and tasks.installed_extras() == {"dev", "test"}
    tasks.ensure_venv(tasks.RUN_EXTRAS)  # run after test: the venv holds more than it needs
    assert len(installs) == 2
