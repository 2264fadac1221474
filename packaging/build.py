#!/usr/bin/env python
"""Build the one-folder executable with PyInstaller, then (optionally) run its self-test.

    .venv/bin/python packaging/build.py [--dist DIR] [--work DIR] [--self-test]

The folder lands in DIST/resnet-gui/ (default: dist/resnet-gui/); the executable inside it is
resnet-gui (resnet-gui.exe on Windows). Prints the build time and the folder's size.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from resnet_gui import APP_ID  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def executable(dist: Path) -> Path:
    return dist / APP_ID / (APP_ID + (".exe" if os.name == "nt" else ""))


def build(dist: Path, work: Path) -> Path:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work), str(ROOT / "packaging" / "resnet_gui.spec")]
    subprocess.run(cmd, check=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    exe = executable(dist)
    size = folder_size(dist / APP_ID)
    print(f"built {exe} in {elapsed / 60:.1f} min; folder size {size / 2**30:.2f} GiB", flush=True)
    return exe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--self-test", action="store_true", help="run the built executable's --self-test")
    args = parser.parse_args()
    exe = build(args.dist, args.work)
    if args.self_test:
        t0 = time.perf_counter()
        code = subprocess.call([str(exe), "--self-test"], timeout=300)
        print(f"self-test of the built executable: exit {code} in {time.perf_counter() - t0:.0f} s")
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
