#!/usr/bin/env python3
"""The project's two commands, with nothing but Python 3.11 and pip needed.

    python3 tasks.py run     set up .venv when missing or stale, check that a window can open, start the app
    python3 tasks.py test    set up .venv when missing or stale, then run the whole test suite

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
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXTRAS = "test,dev"
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _spec_hash(extras: str) -> str:
    h = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project (editable) with `extras`, pinned by constraints.txt."""
    wanted = _spec_hash(extras)
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PY.exists():
        print(f"Creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("Installing resnet-gui and its dependencies (PyTorch is large; this takes a few minutes) ...", flush=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"),
         "-e", f"{ROOT}[{extras}]"],
        check=True,
    )
    STAMP.write_text(wanted)


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
    # One set of extras for every command, so switching commands never reinstalls.
    ensure_venv(EXTRAS)
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
