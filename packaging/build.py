#!/usr/bin/env python
"""Build the one-folder executable with PyInstaller, then (optionally) run its self-test.

    .venv/bin/python packaging/build.py [--edition full|classify ...] [--dist DIR] [--work DIR] [--self-test]

--edition full (the default) lands in DIST/resnet-gui/ (default: dist/resnet-gui/), executable resnet-gui
(resnet-gui.exe on Windows); --edition classify, without PyTorch, in DIST/resnet-gui-classify/, executable
resnet-gui-classify. --edition given twice builds both, one after the other. Prints each build's time and the
folder's size.
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
from resnet_gui.edition import EDITIONS, FULL, executable_name  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def executable(dist: Path, edition: str = FULL) -> Path:
    name = executable_name(edition)
    return dist / name / (name + (".exe" if os.name == "nt" else ""))


def build(dist: Path, work: Path, edition: str = FULL) -> Path:
    """Build one edition (the spec reads RESNET_GUI_EDITION); each edition has its own work folder."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work / edition), str(ROOT / "packaging" / "resnet_gui.spec")]
    subprocess.run(cmd, check=True, cwd=ROOT, env=dict(os.environ, RESNET_GUI_EDITION=edition))
    elapsed = time.perf_counter() - t0
    exe = executable(dist, edition)
    size = folder_size(exe.parent)
    print(f"built {exe} ({edition} edition) in {elapsed / 60:.1f} min; folder size {size / 2**20:.0f} MiB",
          flush=True)
    return exe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=EDITIONS, action="append",
                        help="full (the default): training included; classify: no PyTorch, a fraction of the size; "
                        "repeat it to build both")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--self-test", action="store_true", help="run the built executable's --self-test")
    args = parser.parse_args()
    failed = 0
    for edition in dict.fromkeys(args.edition or [FULL]):
        try:
            exe = build(args.dist, args.work, edition)
        except subprocess.CalledProcessError as exc:
            print(f"building the {edition} edition failed (PyInstaller exited {exc.returncode})", flush=True)
            failed = 1
            continue
        if args.self_test:
            t0 = time.perf_counter()
            code = subprocess.call([str(exe), "--self-test"], timeout=300)
            print(f"self-test of {exe.name}: exit {code} in {time.perf_counter() - t0:.0f} s", flush=True)
            failed = failed or code
    return failed


if __name__ == "__main__":
    sys.exit(main())
