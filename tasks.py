#!/usr/bin/env python3
"""The project's two commands, with nothing but Python 3.11 and pip needed.

    python3 tasks.py run     set up .venv when missing or stale (the app's dependencies), check that a window
                             can open, start the app
    python3 tasks.py test    set up .venv when missing or stale (adding pytest, the linters, PyInstaller and the
                             sample data), then run the whole test suite

pip's output goes to .venv/pip-install.log; the terminal shows one line of progress.

Extra arguments after the command go to the app or to pytest.
(`tasks.py package [--edition classify]` builds the PyInstaller folder: the full app, or the classify-only
edition without PyTorch; see packaging/build.py.)
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
LOG = VENV / "pip-install.log"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
RUN_EXTRAS: frozenset[str] = frozenset()            # running needs the app's own dependencies only
TEST_EXTRAS = frozenset({"test", "dev"})            # testing adds pytest, the linters, PyInstaller, sample data
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _spec_hash() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def installed_extras() -> frozenset[str] | None:
    """The extras .venv holds for the current pyproject.toml and constraints.txt, or None (missing or stale)."""
    if not STAMP.exists():
        return None
    spec, _, extras = STAMP.read_text().strip().partition(" ")
    return frozenset(e for e in extras.split(",") if e) if spec == _spec_hash() else None


def ensure_venv(extras: frozenset[str]) -> None:
    """Create .venv and install the project (editable) with `extras`, pinned by constraints.txt. A venv that
    already holds more (the test command's) is used as it is: switching commands never reinstalls."""
    have = installed_extras()
    if have is not None and extras <= have:
        return
    wanted = extras | (have or frozenset())
    if not PY.exists():
        print(f"Creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    what = "resnet-gui" + (f" with {', '.join(sorted(wanted))}" if wanted else "")
    print(f"Installing {what} (PyTorch is large; this takes a few minutes). The full log: {LOG}", flush=True)
    spec = f"{ROOT}[{','.join(sorted(wanted))}]" if wanted else str(ROOT)
    code = pip_quietly([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-c",
                        str(ROOT / "constraints.txt"), "-e", spec], LOG)
    if code:
        raise SystemExit(code)
    STAMP.write_text(f"{_spec_hash()} {','.join(sorted(wanted))}")


def pip_quietly(command: list[str], log: Path, out=sys.stdout) -> int:
    """Run pip with its whole output in `log`, showing one line that counts the packages as they come (and
    pip's last lines when it fails); its exit code."""
    collected = downloaded = 0
    width = 0
    with open(log, "w", encoding="utf-8") as record, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
            errors="replace") as pip:
        tail: list[str] = []
        for line in pip.stdout:
            record.write(line)
            tail = (tail + [line.rstrip()])[-20:]
            collected += line.startswith("Collecting ")
            downloaded += line.lstrip().startswith("Downloading ")
            if line.startswith(("Collecting ", "  Downloading ", "Installing collected")):
                status = ("  installing…" if line.startswith("Installing collected")
                          else f"  {collected} packages found, {downloaded} downloaded")
                out.write("\r" + status.ljust(width))
                width = len(status)
                out.flush()
        code = pip.wait()
    out.write("\n")
    if code:
        out.write("pip failed; its last lines (all of them are in " + str(log) + "):\n" + "\n".join(tail) + "\n")
    else:
        done = next((t for t in reversed(tail) if t.startswith("Successfully installed")), "")
        out.write(f"  done: {len(done.split()) - 2 if done else 0} packages installed.\n")
    out.flush()
    return code


def check_display(python: Path = PY, env: dict | None = None) -> int:
    """0 when the window can open here; otherwise print why (no display, or the system packages Qt's X11
    plugin needs, with their Debian/Ubuntu and Fedora names) and return 1."""
    return subprocess.call([str(python), "-m", "resnet_gui.startup", "check-display"], cwd=ROOT,
                           env=env if env is not None else dict(os.environ))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "package"}:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    # running installs what running needs; testing and packaging add the rest (once: run never removes it)
    ensure_venv(RUN_EXTRAS if cmd == "run" else TEST_EXTRAS)
    if cmd == "run":
        if not rest or rest[0] == "gui":
            problem = check_display()  # a missing X library would end in a Qt abort naming the wrong package
            if problem:
                return problem
        return subprocess.call([str(PY), "-m", "resnet_gui", *rest], cwd=ROOT)
    if cmd == "package":
        return subprocess.call([str(PY), str(ROOT / "packaging" / "build.py"), *rest], cwd=ROOT)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
