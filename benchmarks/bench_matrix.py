"""Time to draw the Evaluate tab's confusion matrix at 30, 200 and 1,000 classes: this tree's view against the
view of an earlier commit (one QPainter cell per class pair, with text), in one run.

For each size: set_matrix, the first paint into a 900 x 900 image (the heat map image is built then), a repaint,
and the exported figure (the earlier view's 1200-px to_image against export_image). Median of --runs.

    .venv/bin/python benchmarks/bench_matrix.py [--runs 5] [--old-commit d5a177d] [--sizes 30 200 1000]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VIEW = "resnet_gui/ui/evaluate/confusion_matrix_view.py"


def old_view_class(commit: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{VIEW}"], capture_output=True, text=True,
                            check=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_confusion_matrix_view.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_confusion_matrix_view", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ConfusionMatrixView


def matrix(n: int, seed: int = 0) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    cm = np.diag(rng.integers(20, 30, n))
    for _ in range(n * 3):
        cm[rng.integers(n), rng.integers(n)] += rng.integers(1, 4)
    return cm.tolist()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def measure(view_class, n: int, new: bool) -> dict[str, float]:
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QImage, QPainter

    view = view_class()
    names = [f"bird species {i:04d}" for i in range(n)]
    cm = matrix(n)
    out = {"set_matrix": timed(lambda: view.set_matrix(names, cm))}
    image = QImage(900, 900, QImage.Format.Format_ARGB32)

    def paint():
        painter = QPainter(image)
        view.paint(painter, QRect(0, 0, 900, 900), view.palette(), view.font())
        painter.end()

    out["first paint"] = timed(paint)
    out["repaint"] = timed(paint)
    out["export"] = timed(lambda: view.export_image("title") if new else view.to_image(1200))
    view.deleteLater()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--old-commit", default="d5a177d")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 200, 1000])
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])  # noqa: F841 - kept alive for the widgets
    from resnet_gui.ui.evaluate.confusion_matrix_view import ConfusionMatrixView

    old = old_view_class(args.old_commit)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; load average {load}; offscreen Qt; median of {args.runs}")
    for n in args.sizes:
        rows = {"new": [], "old": []}
        for _ in range(args.runs):  # interleaved
            rows["new"].append(measure(ConfusionMatrixView, n, True))
            rows["old"].append(measure(old, n, False))
        print(f"{n:,} classes (ms):      this tree | {args.old_commit} | ratio")
        for key in rows["new"][0]:
            a = statistics.median(r[key] for r in rows["new"])
            b = statistics.median(r[key] for r in rows["old"])
            print(f"  {key:<18} {a:9.1f} | {b:9.1f} | {b / a if a else float('inf'):6.1f}x")


if __name__ == "__main__":
    main()
