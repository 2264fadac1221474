"""The built executables measured, each edition found under DIST and the same commands run from source, side by
side in one run (interleaved): folder size (and its zip), `EXE predict one.jpg` warm (wall time and peak resident
memory of the whole process), the window shown and the Predict tab ready to classify with the demo model (offscreen
Qt).

    .venv/bin/python packaging/build.py --edition classify --edition full    # builds dist/resnet-gui*/
    .venv/bin/python benchmarks/bench_frozen.py [--dist dist] [--runs 5] [--zip]

one.jpg is scikit-image's chelsea photo (451 x 300) saved as a JPEG; every run starts in the same fresh
RESNET_GUI_HOME, warmed by two runs first (the first installs the demo model and caches its graph). "source" is
`python -m resnet_gui` of this checkout with this Python (measured the same way).

Each command is started by a small Python (`python -I -S`, about 10 MB) that times it and reads its peak resident
memory: Linux counts in a child's ru_maxrss the memory it shared with its parent until exec (vfork or fork), so a
command started straight from this process (about 510 MB: bench_predict imports torch) read 533 MB for a 176 MB
process.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


# Started by this process, a child's peak would read at least this process's own size (see the docstring); the
# launcher prints "MEASURED <seconds> <peak KB> <exit code>" on its stderr once the command has exited, where seconds
# run until the first stdout line starting with the marker (argv[1], empty: until exit).
_MEASURE = """
import os, subprocess, sys, time
marker, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
elapsed = None
for line in proc.stdout:
    if marker and elapsed is None and line.startswith(marker.encode()):
        elapsed = time.perf_counter() - t0
_pid, status, usage = os.wait4(proc.pid, 0)
if elapsed is None:
    elapsed = -1.0 if marker else time.perf_counter() - t0
print("MEASURED", elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status), file=sys.stderr)
"""


def run_measured(cmd: list[str], env: dict, marker: str | None = None) -> tuple[float, float]:
    """(seconds until exit or until a stdout line starts with `marker`, peak resident MB of the process), the
    command started by a small launcher so that its peak is its own."""
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", _MEASURE, marker or "", *cmd], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = proc.stderr.rstrip("\n").rpartition("\n")[2]
    if not last.startswith("MEASURED "):
        raise RuntimeError(f"{cmd}: the launcher failed ({proc.returncode}): {proc.stderr[-2000:]}")
    _, seconds, peak_kb, code = last.split()
    if int(code) != 0:
        raise RuntimeError(f"{cmd} exited {code}")
    if float(seconds) < 0:
        raise RuntimeError(f"{cmd} ended without printing {marker}")
    return float(seconds), int(peak_kb) / 1024  # Linux: kilobytes


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

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs ({cpu_flags()}), load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for edition, exe in exes.items():
        size = folder_bytes(exe.parent)
        zipped = f", zip {zip_bytes(exe.parent) / 1e6:.0f} MB" if args.zip else ""
        print(f"{edition}: folder {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB){zipped}")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "one.jpg"
        Image.fromarray(data.chelsea()).save(image, quality=90)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env.update(RESNET_GUI_HOME=str(Path(tmp) / "home"), QT_QPA_PLATFORM="offscreen")
        # label -> (command head, environment): each built edition, and this checkout run by this Python
        sides = {e: ([str(exe)], env) for e, exe in exes.items()}
        sides["source"] = ([sys.executable, "-m", "resnet_gui"], dict(env, PYTHONPATH=str(ROOT)))
        for head, side_env in sides.values():
            for _ in range(2):
                run_measured([*head, "predict", str(image)], side_env)
        times: dict[str, dict[str, list]] = {s: {"predict": [], "rss": [], "shown": [], "ready": []} for s in sides}
        for _ in range(args.runs):
            for label, (head, side_env) in sides.items():
                seconds, rss = run_measured([*head, "predict", str(image)], side_env)
                times[label]["predict"].append(seconds)
                times[label]["rss"].append(rss)
                times[label]["shown"].append(run_measured(
                    head, dict(side_env, RESNET_GUI_STARTUP_PROBE="exit"), "RESNET_GUI_WINDOW_SHOWN")[0])
                times[label]["ready"].append(run_measured(
                    head, dict(side_env, RESNET_GUI_STARTUP_PROBE="ready"), "RESNET_GUI_MODEL_READY")[0])
    med = {s: {k: statistics.median(v) for k, v in t.items()} for s, t in times.items()}
    for label, m in med.items():
        print(f"{label}: predict one.jpg {m['predict']:.2f} s, peak {m['rss']:.0f} MB resident (runs "
              f"{', '.join(f'{x:.0f}' for x in times[label]['rss'])}) | window shown {m['shown']:.2f} s | ready to "
              f"classify {m['ready']:.2f} s (whole processes, median of {args.runs}; predict runs "
              f"{', '.join(f'{x:.2f}' for x in times[label]['predict'])})")
    src = med["source"]
    for edition in exes:
        m = med[edition]
        print(f"{edition} / source: predict time {m['predict'] / src['predict']:.2f}x, memory "
              f"{m['rss'] / src['rss']:.2f}x, window {m['shown'] / src['shown']:.2f}x, ready "
              f"{m['ready'] / src['ready']:.2f}x")
    if len(exes) == 2:
        c, f = med["classify"], med["full"]
        print(f"classify / full: predict time {c['predict'] / f['predict']:.2f}x, memory {c['rss'] / f['rss']:.2f}x, "
              f"window {c['shown'] / f['shown']:.2f}x, ready {c['ready'] / f['ready']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
