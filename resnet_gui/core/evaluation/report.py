"""An evaluation written for a spreadsheet: the headline figures (one row per figure) and the per-class table
(precision, recall, F1, support, average precision, ROC area, the class's own threshold), next to the per-image
rows of `evaluate.write_rows_csv`. Spreadsheet-safe cells; written atomically. No torch."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..inference.prediction import DEFAULT_THRESHOLD, csv_cell


def _write(out: os.PathLike | str, rows: list[list]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([csv_cell(v) if isinstance(v, str) else v for v in row])
    return atomic_write_bytes(out, buf.getvalue().encode("utf-8"))


def _num(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def summary_rows(ev) -> list[list]:
    f = ev.figures
    rows = [["figure", "value", "meaning"],
            ["model", ev.model, ""],
            ["data", ev.data, "what was evaluated"],
            ["images", f.n, "images classified (files that could not be read are left out)"],
            ["unreadable files", len(ev.failed), ""],
            ["accuracy", _num(f.accuracy), "share of images whose top answer is the true class"],
            ["balanced accuracy", _num(f.balanced_accuracy), "mean of the per-class recalls"],
            ["largest class share", _num(f.majority_baseline), "what always answering the largest class scores"]]
    for k, value in sorted(f.top_k_accuracy.items()):
        rows.append([f"top-{k} accuracy", _num(value), f"the true class is among the {k} most likely"])
    rows += [["calibration error (ECE)", _num(f.ece), "15 bins; 0 is perfect"],
             ["mean confidence", _num(f.mean_confidence), ""],
             ["calibrated", "yes" if ev.calibrated else "no", "temperature scaling"],
             ["mirror-image averaging", "yes" if ev.tta else "no", ""]]
    return rows


def per_class_rows(ev, threshold: float = DEFAULT_THRESHOLD) -> list[list]:
    rows = [["class", "precision", "recall", "f1", "support", "average_precision", "roc_auc", "own_threshold",
             "sure_from", "precision_sure", "recall_sure"]]
    curves = {c.name: c for c in ev.curves}
    for c in ev.figures.per_class:
        curve = curves.get(c.name)
        own = (ev.operating_points.get(c.name) or {}).get("threshold")
        bar = ev.threshold_of(c.name, threshold)
        precision, recall, _ = curve.at(bar) if curve is not None else (None, None, 0)
        rows.append([c.name, _num(c.precision), _num(c.recall), _num(c.f1), c.support,
                     _num(curve.average_precision if curve else None), _num(curve.roc_auc if curve else None),
                     _num(own, 4), _num(bar, 4), _num(precision), _num(recall)])
    return rows


def report_paths(rows_csv: os.PathLike | str) -> tuple[Path, Path, Path]:
    """NAME.csv, NAME-summary.csv and NAME-per-class.csv: the files write_report writes."""
    rows_csv = Path(rows_csv)
    return rows_csv, rows_csv.with_name(rows_csv.stem + "-summary.csv"), \
        rows_csv.with_name(rows_csv.stem + "-per-class.csv")


def write_report(ev, rows_csv: os.PathLike | str, threshold: float = DEFAULT_THRESHOLD) -> tuple[Path, Path, Path]:
    """NAME.csv (one row per image), NAME-summary.csv and NAME-per-class.csv side by side; each refused
    (OutputError) where it would replace the model or land among the app's models and runs."""
    from ..paths import check_output
    from .evaluate import write_rows_csv

    rows_csv, summary, per_class = report_paths(rows_csv)
    for path in (summary, per_class):
        check_output(path, model=ev.model_path)
    write_rows_csv(ev, rows_csv)
    _write(summary, summary_rows(ev))
    _write(per_class, per_class_rows(ev, threshold))
    return rows_csv, summary, per_class
