"""The built executables measured, each edition found under DIST side by side in one run (interleaved):
folder size (and its zip), `EXE predict one.jpg` warm (wall time and peak resident memory of the whole
process), the window shown and the Predict tab ready to classify with the demo model (offscreen Qt).

    .venv/bin/python packaging/build.py --edition classify --edition full    # builds dist/resnet-gui*/
    .venv/bin/python benchmarks/bench_frozen.py [--dist dist] [--runs 5] [--zip]

one.jpg is scikit-image's chelsea photo (451 x 300) saved as a JPEG; every run starts in the same fresh
RESNET_GUI_HOME, warmed by two runs first (the first installs the demo model and caches its graph).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import cpu_flags, cpu_name  # noqa: E402

from resnet_gui.edition import EDITIONS, executable_name  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def zip_bytes(folder: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        archive = shutil.make_archive(str(Path(tmp) / folder.name), "zip", folder.parent, folder.name)
        return Path(archive).stat().st_size


def run_measured(cmd: list[str], env: dict, marker: str | None = None) -> tuple[float, float]:
    """(seconds until exit or until a stdout line starts with `marker`, peak resident MB of the process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    elapsed = None
    for line in proc.stdout:
        if marker and elapsed is None and line.startswith(marker):
            elapsed = time.perf_counter() - t0
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if elapsed is None:
        elapsed = time.perf_counter() - t0
        if marker:
            raise RuntimeError(f"{cmd} ended (exit {proc.returncode}) without printing {marker}")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024  # Linux: kilobytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--zip", action="store_true", help="also the size of each folder as a zip (deflate)")
    args = parser.parse_args()
    exes = {e: args.dist / executable_name(e) / executable_name(e) for e in EDITIONS}
    exes = {e: exe for e, exe in exes.items() if exe.is_file()}
    if not exes:
        print(f"no built edition under {args.dist}: build one with packaging/build.py first")
        return 1
    from PIL import Image
    from skimage import data

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs ({cpu_flags()})")
    for edition, exe in exes.items():
        size = folder_bytes(exe.parent)
        zipped = f", zip {zip_bytes(exe.parent) / 1e6:.0f} MB" if args.zip else ""
        print(f"{edition}: folder {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB){zipped}")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "one.jpg"
        Image.fromarray(data.chelsea()).save(image, quality=90)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env.update(RESNET_GUI_HOME=str(Path(tmp) / "home"), QT_QPA_PLATFORM="offscreen")
        predict = {e: [str(exe), "predict", str(image)] for e, exe in exes.items()}
        for cmd in predict.values():
            for _ in range(2):
                run_measured(cmd, env)
        times: dict[str, dict[str, list]] = {e: {"predict": [], "rss": [], "shown": [], "ready": []} for e in exes}
        for _ in range(args.runs):
            for edition, exe in exes.items():
                seconds, rss = run_measured(predict[edition], env)
                times[edition]["predict"].append(seconds)
                times[edition]["rss"].append(rss)
                times[edition]["shown"].append(run_measured(
                    [str(exe)], dict(env, RESNET_GUI_STARTUP_PROBE="exit"), "RESNET_GUI_WINDOW_SHOWN")[0])
                times[edition]["ready"].append(run_measured(
                    [str(exe)], dict(env, RESNET_GUI_STARTUP_PROBE="ready"), "RESNET_GUI_MODEL_READY")[0])
    med = {e: {k: statistics.median(v) for k, v in t.items()} for e, t in times.items()}
    for edition, m in med.items():
        print(f"{edition}: predict one.jpg {m['predict']:.2f} s, peak {m['rss']:.0f} MB resident | window shown "
              f"{m['shown']:.2f} s | ready to classify {m['ready']:.2f} s (whole processes, median of {args.runs}; "
              f"predict runs {', '.join(f'{x:.2f}' for x in times[edition]['predict'])})")
    if len(med) == 2:
        c, f = med["classify"], med["full"]
        print(f"classify / full: predict time {c['predict'] / f['predict']:.2f}x, memory {c['rss'] / f['rss']:.2f}x, "
              f"window {c['shown'] / f['shown']:.2f}x, ready {c['ready'] / f['ready']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
