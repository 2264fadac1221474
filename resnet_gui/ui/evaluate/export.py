"""The Evaluate tab's Export: one evaluation written as files side by side, all or none. NAME.csv (one row per
image), NAME-summary.csv and NAME-per-class.csv (core.evaluation.report), and NAME-confusion-matrix.png (the
matrix view's framed figure, without the selection); every path checked before anything is written."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage


class ExportRefused(Exception):
    """Nothing, or not everything, was saved: the sentence to show says why."""


def export_evaluation(evaluation, csv_path: Path, matrix: QImage, threshold: float) -> tuple[Path, ...]:
    """Write the report files and the matrix figure; returns (csv, summary, per-class, png). Raises ExportRefused
    with the sentence to show when a path is refused (nothing is written) or a write fails."""
    from resnet_gui.core.atomic import atomic_write_bytes
    from resnet_gui.core.errors import ResnetGuiError, user_message
    from resnet_gui.core.evaluation.report import report_paths, write_report
    from resnet_gui.core.paths import output_problem

    png_path = csv_path.with_name(csv_path.stem + "-confusion-matrix.png")
    problem = next(filter(None, (output_problem(p, model=evaluation.model_path)
                                 for p in (*report_paths(csv_path), png_path))), None)
    if problem:  # none of the files is written
        raise ExportRefused(f"The evaluation was not saved: {problem}.")
    data = QByteArray()
    png = QBuffer(data)
    png.open(QIODevice.OpenModeFlag.WriteOnly)
    matrix.save(png, "PNG")
    png.close()
    try:
        written = write_report(evaluation, csv_path, threshold)
        atomic_write_bytes(png_path, bytes(data.data()))
    except (OSError, ResnetGuiError) as exc:
        raise ExportRefused(f"The evaluation could not be saved. {user_message(exc)}") from exc
    return (*written, png_path)
