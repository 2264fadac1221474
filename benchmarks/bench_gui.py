"""GUI responsiveness: time to window shown (against `import torch` alone), and the longest GUI-thread
stall while a CPU training run is in progress.

1. Start-up: the whole process `python -m resnet_gui` (offscreen) until the window's first event-loop
   turn, against `python -c "import torch"`, each timed from process start, side by side, median of N.
2. Stall: the real MainWindow trains resnet18_cifar on generated 32x32 class folders through the Train
   tab while a 10 ms QTimer records how late each tick is; prints the worst and the 99th percentile.

    .venv/bin/python benchmarks/bench_gui.py [--runs 5] [--seconds 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_predict import cpu_name  # noqa: E402


def time_process(cmd: list[str], marker: str | None, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    if marker is None:
        proc.wait()
        return time.perf_counter() - t0
    for line in proc.stdout:
        if line.startswith(marker):
            elapsed = time.perf_counter() - t0
            proc.wait()
            return elapsed
    raise RuntimeError(f"{cmd} ended without printing {marker}")


def startup(runs: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RESNET_GUI_STARTUP_PROBE="exit", RESNET_GUI_HOME=home)
        time_process([sys.executable, "-c", "import torch"], None, env)  # warm the disk cache for both
        window, torch_only = [], []
        for _ in range(runs):
            window.append(time_process([sys.executable, "-m", "resnet_gui"], "RESNET_GUI_WINDOW_SHOWN", env))
            torch_only.append(time_process([sys.executable, "-c", "import torch"], None, env))
    w, t = statistics.median(window), statistics.median(torch_only)
    print(f"start-up: window shown {w:.2f} s | `import torch` alone {t:.2f} s | ratio {w / t:.2f}x "
          f"(whole processes, median of {runs})")


def stall(seconds: float, threads: int = 0) -> None:
    from helpers import make_folder_dataset

    home = tempfile.mkdtemp()
    os.environ["RESNET_GUI_HOME"] = home
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from resnet_gui.core.settings import Settings
    from resnet_gui.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])  # noqa: F841 - kept alive for the window
    data = make_folder_dataset(Path(home) / "data", classes=tuple(f"c{i}" for i in range(10)), per_class=300,
                               size=(32, 32))
    window = MainWindow(Settings())
    window.resize(1280, 820)
    window.show()
    window.start_background_loading()

    def spin(ms):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    while not (window.is_ready() and window.registry.loaded):
        spin(50)
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.mode_combo.setCurrentIndex(2)
    tab.data.folder_edit.setText(str(data))
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.form.epochs_spin.setValue(100)
    tab.form.batch_spin.setValue(32)
    tab.form.device_combo.setCurrentIndex(tab.form.device_combo.findData("cpu"))
    tab.form.threads_spin.setValue(threads)  # 0: automatic
    used = tab.config().threads
    tab.start()
    while tab.plots.point_counts()["batch"] < 2:  # measure while batches are really running
        spin(20)
    lateness: list[float] = []
    first = tab.plots.point_counts()["batch"]
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick():
        now = clock.nsecsElapsed()
        lateness.append(max(0.0, (now - last[0]) / 1e6 - 10.0))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    spin(int(seconds * 1000))
    timer.stop()
    batches = tab.plots.point_counts()["batch"]
    tab.stop()
    while tab.is_training():
        spin(50)
    window.close()
    while window.isVisible():
        spin(50)
    lateness.sort()
    p99 = lateness[int(0.99 * (len(lateness) - 1))]
    print(f"training speed while measured: {(batches - first) * 32 / seconds:.0f} images/s (batch 32)")
    print(f"GUI stall during CPU training ({seconds:.0f} s, {batches} batch points plotted, torch using "
          f"{used} of {os.cpu_count()} cores): worst {lateness[-1]:.1f} ms late, "
          f"99th percentile {p99:.1f} ms, median {statistics.median(lateness):.1f} ms ({len(lateness)} ticks of 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=0, help="training threads (0: the GUI's automatic choice)")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, offscreen Qt")
    if not args.skip_startup:
        startup(args.runs)
    stall(args.seconds, args.threads)


if __name__ == "__main__":
    main()
