"""GUI responsiveness: time to window shown (against `import torch` alone), and the longest GUI-thread
stall while a CPU training run is in progress.

1. Start-up: the whole process `python -m resnet_gui` (offscreen) until the window's first event-loop
   turn, against `python -c "import torch"`, each timed from process start, side by side, median of N;
   and until the Predict tab has loaded its default model (ready to classify), optionally also for
   another source tree (`--tree DIR`, e.g. an older commit) in the same run.
2. Stall: the real MainWindow trains resnet18_cifar on generated 32x32 class folders through the Train
   tab while a 10 ms QTimer records how late each tick is; prints the worst and the 99th percentile.
3. Folder: the real MainWindow classifies a generated folder of N small images (PNG and JPEG, 32x32, in
   sub-folders named after the demo model's classes) with the bundled demo model, opened in the Predict tab
   through the method that "Open folder…" calls, while the same 10 ms timer records GUI-thread stalls;
   prints the worst and the 99th percentile, the time to the first rows in the table, the rows present at
   25/50/75 % of the run (progressive fill), the total time and images/s, the worst ticks and the garbage
   collector's runs (a full collection holds the GIL: the GUI thread waits for it too).

    .venv/bin/python benchmarks/bench_gui.py [--runs 5] [--seconds 30] [--folder-images 10000]
        [--skip-startup] [--tree DIR] [--skip-stall] [--trace-stalls MS]
        (--folder-images 0 skips the folder measurement)
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_predict import cpu_name  # noqa: E402


def time_process(cmd: list[str], marker: str | None, env: dict, cwd: str | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
    if marker is None:
        proc.wait()
        return time.perf_counter() - t0
    for line in proc.stdout:
        if line.startswith(marker):
            elapsed = time.perf_counter() - t0
            proc.wait()
            return elapsed
    raise RuntimeError(f"{cmd} ended without printing {marker}")


# the app as `resnet-gui` starts it (ui/app.py), until the Predict tab has its default model (the demo) loaded
READY_DRIVER = """
import os, sys
os.environ["RESNET_GUI_STARTUP_PROBE"] = "ready"   # app.py prints RESNET_GUI_MODEL_READY and quits
from resnet_gui.ui.app import run_app
sys.exit(run_app())
"""


def startup(runs: int, tree: Path | None = None) -> None:
    """Window shown, and ready to classify (default model loaded), against `import torch` alone; with `tree`,
    ready to classify for that source tree too (an unpacked `git archive` of another commit), interleaved."""
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RESNET_GUI_STARTUP_PROBE="exit", RESNET_GUI_HOME=home)
        tree_env = dict(env, PYTHONPATH=str(tree)) if tree else None
        time_process([sys.executable, "-c", "import torch"], None, env)  # warm the disk cache for both
        # run from the home folder: `python -c` puts the working directory first on sys.path, before PYTHONPATH
        ready_cmd = [sys.executable, "-c", READY_DRIVER]
        time_process(ready_cmd, "RESNET_GUI_MODEL_READY", env, home)  # installs the demo model into the home
        window, torch_only, ready, ready_tree = [], [], [], []
        for _ in range(runs):
            window.append(time_process([sys.executable, "-m", "resnet_gui"], "RESNET_GUI_WINDOW_SHOWN", env))
            torch_only.append(time_process([sys.executable, "-c", "import torch"], None, env))
            ready.append(time_process(ready_cmd, "RESNET_GUI_MODEL_READY", env, home))
            if tree_env:
                ready_tree.append(time_process(ready_cmd, "RESNET_GUI_MODEL_READY", tree_env, home))
    w, t, r = statistics.median(window), statistics.median(torch_only), statistics.median(ready)
    print(f"start-up: window shown {w:.2f} s | `import torch` alone {t:.2f} s | ratio {w / t:.2f}x "
          f"(whole processes, median of {runs})")
    print(f"ready to classify (the demo model loaded in the Predict tab): {r:.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in ready)})")
    if ready_tree:
        rt = statistics.median(ready_tree)
        print(f"  {tree}: {rt:.2f} s (runs {', '.join(f'{x:.2f}' for x in ready_tree)}); this tree is "
              f"{rt / r:.2f}x faster")


_app = None


def app_home() -> str:
    """One temporary RESNET_GUI_HOME (its empty registry gets the demo model) and one QApplication per process."""
    global _app
    if _app is None:
        os.environ["RESNET_GUI_HOME"] = tempfile.mkdtemp()
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        _app = QApplication(sys.argv[:1])
    return os.environ["RESNET_GUI_HOME"]


def spin(ms: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def open_window():
    from resnet_gui.core.settings import Settings
    from resnet_gui.ui.main_window import MainWindow

    window = MainWindow(Settings())
    window.resize(1280, 820)
    window.show()
    window.start_background_loading()
    while not (window.is_ready() and window.registry.loaded):
        spin(50)
    return window


def close_window(window) -> None:
    window.close()
    while window.isVisible():
        spin(50)
    window.deleteLater()


class StallClock:
    """A 10 ms QTimer on the GUI thread; lateness[i] is how late tick i came (ms), at times[i] (s from start).

    trace_ms > 0: a watchdog thread samples the GUI thread's Python stack whenever a tick is that late."""

    def __init__(self, on_tick=None, trace_ms: float = 0):
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.lateness: list[float] = []
        self.times: list[float] = []
        self.on_tick = on_tick
        self.trace_ms = trace_ms
        self.traces: dict[str, int] = {}   # stack text -> samples seen during stalls
        self._gui_thread = threading.get_ident()
        self._last_wall = time.perf_counter()
        self._watching = threading.Event()
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.clock.start()
        self.last = self.clock.nsecsElapsed()
        self.timer.start()
        if self.trace_ms > 0:
            self._watching.set()
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self._watching.is_set():
            time.sleep(0.02)
            if (time.perf_counter() - self._last_wall) * 1000 > self.trace_ms + 10:
                frame = sys._current_frames().get(self._gui_thread)
                if frame is not None:
                    stack = "".join(traceback.format_stack(frame)[-8:])
                    self.traces[stack] = self.traces.get(stack, 0) + 1

    def elapsed(self) -> float:
        return self.clock.nsecsElapsed() / 1e9

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.lateness.append(max(0.0, (now - self.last) / 1e6 - 10.0))
        self.times.append(now / 1e9)
        self.last = now
        self._last_wall = time.perf_counter()
        if self.on_tick is not None:
            self.on_tick(now / 1e9)

    def stop(self) -> tuple[float, float, float]:
        """(worst, 99th percentile, median) lateness in ms."""
        self.timer.stop()
        self._watching.clear()
        late = sorted(self.lateness) or [0.0]
        return late[-1], late[int(0.99 * (len(late) - 1))], statistics.median(late)


class GcClock:
    """Times the garbage collector's runs (all threads; a collection holds the GIL, so it stalls the GUI too)."""

    def __init__(self):
        self.runs: list[tuple[int, float]] = []   # (generation, ms)
        self._t0 = 0.0

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.runs.append((info["generation"], (time.perf_counter() - self._t0) * 1000))

    def summary(self) -> str:
        full = [ms for gen, ms in self.runs if gen == 2]
        young = [ms for gen, ms in self.runs if gen < 2]
        return (f"garbage collections: {len(young)} young (longest {max(young, default=0):.0f} ms), {len(full)} full"
                + (f" ({', '.join(f'{ms:.0f}' for ms in full)} ms)" if full else "")
                + f"; {len(gc.get_objects()):,} objects tracked")


def load_average() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "load average unknown"


def stall(seconds: float, threads: int = 0) -> None:
    from helpers import make_folder_dataset

    home = app_home()
    data = make_folder_dataset(Path(home) / "data", classes=tuple(f"c{i}" for i in range(10)), per_class=300,
                               size=(32, 32))
    window = open_window()
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.set_mode("scratch")
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
    first = tab.plots.point_counts()["batch"]
    clock = StallClock()
    clock.start()
    spin(int(seconds * 1000))
    worst, p99, median = clock.stop()
    batches = tab.plots.point_counts()["batch"]
    tab.stop()
    while tab.is_training():
        spin(50)
    close_window(window)
    print(f"training speed while measured: {(batches - first) * 32 / seconds:.0f} images/s (batch 32)")
    print(f"GUI stall during CPU training ({seconds:.0f} s, {batches} batch points plotted, torch using "
          f"{used} of {os.cpu_count()} cores): worst {worst:.1f} ms late, "
          f"99th percentile {p99:.1f} ms, median {median:.1f} ms ({len(clock.lateness)} ticks of 10 ms)")


def make_image_folder(root: Path, n: int, classes: list[str], size: int = 32) -> Path:
    """n small images (every fourth one a JPEG) spread over sub-folders named after `classes`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        label = classes[i % len(classes)]
        base = (rng.integers(0, 256, 3) + ((xx * (i % 7) + yy * (i % 5)) * 4)[..., None]) % 256
        noise = rng.integers(0, 40, (size, size, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        ext = "jpg" if i % 4 == 3 else "png"
        Image.fromarray(pixels).save(root / label / f"img_{i:05d}.{ext}")
    return root


def folder(n_images: int, trace_ms: float = 0) -> None:
    home = app_home()
    from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
    from resnet_gui.core.models.demo import demo_checkpoint_path

    classes = [str(c) for c in read_checkpoint_metadata(demo_checkpoint_path())["class_names"]]
    t = time.perf_counter()
    data = make_image_folder(Path(tempfile.mkdtemp(dir=home)) / "many", n_images, classes)
    made = time.perf_counter() - t
    window = open_window()
    tab = window.predict_tab
    window.tabs.setCurrentWidget(tab)
    while tab.session.model is None:  # the demo model loaded: time the folder alone
        if tab.session.model_error:
            raise RuntimeError(f"the demo model did not load: {tab.session.model_error}")
        spin(20)
    view = tab.folder
    fill: list[tuple[float, int]] = []   # (seconds since the folder was opened, rows in the table)
    first_rows = [None]

    def on_tick(now: float) -> None:
        rows = view.proxy.rowCount()
        fill.append((now, rows))
        if rows and first_rows[0] is None:
            first_rows[0] = now

    done: list = []
    tab.session.folder_done.connect(lambda d: done.append((clock.elapsed(), d)) if not d.cancelled else None)
    clock = StallClock(on_tick, trace_ms)
    load = load_average()
    with GcClock() as collections:
        clock.start()
        tab.open_path(str(data))  # what File → Open folder… and the Open folder… button call after the dialog
        while not done:
            spin(20)
        worst, p99, median = clock.stop()
    total, result = done[0]
    rows = view.table_model.rowCount()
    sorting = sort_folder(view, Path(home) / "sorted")
    evaluating = evaluate_folder(window, str(data))
    close_window(window)
    rows_at = dict(fill)
    worst_ticks = sorted(zip(clock.lateness, clock.times), reverse=True)[:3]
    at = []
    for share in (0.25, 0.5, 0.75):
        before = [r for s, r in fill if s <= share * total]
        at.append(f"{before[-1] if before else 0:,} ({share:.0%})")
    first = f"{first_rows[0] * 1000:.0f} ms" if first_rows[0] is not None else "never"
    print(f"folder of {n_images:,} images ({n_images - n_images // 4:,} PNG + {n_images // 4:,} JPEG, 32x32, "
          f"{len(classes)} class sub-folders; made in {made:.1f} s), demo model on the CPU, {load} when opened:")
    print(f"  {result.done:,} classified, {rows:,} rows in the table; total {total:.1f} s, "
          f"{result.done / total:.0f} images/s; first rows visible after {first}; "
          f"rows at 25/50/75 % of the run: {', '.join(at)}")
    print(f"  GUI stall while the folder runs: worst {worst:.1f} ms late, 99th percentile {p99:.1f} ms, "
          f"median {median:.1f} ms ({len(clock.lateness)} ticks of 10 ms); goal < 100 ms: "
          f"{'met' if worst < 100 else 'NOT met'}")
    print("  worst ticks: " + ", ".join(f"{late:.0f} ms at {when:.1f} s ({rows_at.get(when, 0):,} rows)"
                                         for late, when in worst_ticks))
    print(f"  {collections.summary()}")
    for stack, samples in sorted(clock.traces.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  GUI thread during stalls over {trace_ms:.0f} ms ({samples} samples of 20 ms):\n{stack}")
    print(sorting)
    print(evaluating)


def evaluate_folder(window, folder: str) -> str:
    """The same folder in the Evaluate tab (its sub-folders are the demo model's classes), then its Thresholds
    view: every class shown and a precision goal found, while the 10 ms timer records GUI-thread stalls."""
    tab = window.evaluate_tab
    window.tabs.setCurrentWidget(tab)
    clock = StallClock()
    clock.start()
    t = time.perf_counter()
    tab.evaluate_folder(window.predict_tab.current_model_name(), folder)
    while tab.outcome is None or tab.busy():
        spin(20)
    took = time.perf_counter() - t
    tab.details.setCurrentWidget(tab.curves_page)
    t = time.perf_counter()
    for i in range(tab.curves.class_combo.count()):
        tab.curves.class_combo.setCurrentIndex(i)
        tab.curves.find_for_precision()
        spin(10)
    per_class = (time.perf_counter() - t) / max(1, tab.curves.class_combo.count())
    worst, p99, median = clock.stop()
    n = tab.outcome.evaluation.figures.n
    return (f"evaluate the folder: {n:,} images in {took:.1f} s, then each class's curves and a precision goal in "
            f"{per_class * 1000:.0f} ms (10 ms of it waiting); GUI stall: worst {worst:.1f} ms late, 99th percentile "
            f"{p99:.1f} ms, median {median:.1f} ms ({len(clock.lateness)} ticks); goal < 100 ms: "
            f"{'met' if worst < 100 else 'NOT met'}")


def sort_folder(view, out: Path) -> str:
    """*Sort into folders…* on the results: the dialog built (its plan and preview, on the GUI thread), then
    every file moved and moved back (Undo) in the worker, while the 10 ms timer records GUI-thread stalls."""
    clock = StallClock()
    clock.start()
    t0 = time.perf_counter()
    dialog = view.sort_dialog()
    dialog.out_edit.setText(str(out))
    dialog.move_radio.setChecked(True)
    dialog.show()
    built = time.perf_counter() - t0
    while not dialog.ready():
        spin(10)
    planned = time.perf_counter() - t0
    timings = []
    for action in (dialog.start, dialog.undo):
        t = time.perf_counter()
        action()
        while dialog.busy():
            spin(20)
        timings.append(time.perf_counter() - t)
    worst, p99, median = clock.stop()
    result, undone = dialog.result, dialog.undo_result
    dialog.close()
    dialog.deleteLater()
    return (f"sort into folders: dialog shown in {built * 1000:.0f} ms, its preview of {len(dialog.plan):,} files "
            f"(made in a worker) after {planned * 1000:.0f} ms; {result.written:,} moved in {timings[0]:.1f} s, "
            f"{undone.moved_back:,} moved back in "
            f"{timings[1]:.1f} s; GUI stall: worst {worst:.1f} ms late, 99th percentile {p99:.1f} ms, median "
            f"{median:.1f} ms ({len(clock.lateness)} ticks); goal < 100 ms: {'met' if worst < 100 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=0, help="training threads (0: the GUI's automatic choice)")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--tree", type=Path, help="also time 'ready to classify' for this source tree (e.g. an "
                        "unpacked `git archive` of an older commit), on PYTHONPATH")
    parser.add_argument("--skip-stall", action="store_true", help="skip the stall-during-training measurement")
    parser.add_argument("--folder-images", type=int, default=10_000,
                        help="images in the generated folder for the Predict folder measurement (0: skip it)")
    parser.add_argument("--trace-stalls", type=float, default=0, metavar="MS",
                        help="print the GUI thread's Python stack during folder stalls longer than MS")
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, offscreen Qt; "
          f"{load_average()} at start")
    if not args.skip_startup:
        startup(args.runs, args.tree)
    if not args.skip_stall:
        stall(args.seconds, args.threads)
    if args.folder_images > 0:
        folder(args.folder_images, args.trace_stalls)


if __name__ == "__main__":
    main()
