"""The folder results table (issue 27, item 10): unfamiliar confidences greyed and sorted apart, compact rows,
counts per state, an export that follows the filter, familiarity explained, the save dialog not in the folder."""
import csv

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from resnet_gui.core.inference.prediction import Prediction
from resnet_gui.ui.predict import folder_results_view, results_table
from resnet_gui.ui.predict.folder_results_view import CONFIDENCE_COLUMN, STATUS_COLUMN, FolderResultsView
from resnet_gui.ui.predict.session import FolderDone, FolderRows


@pytest.fixture
def view(qtbot, settings):
    view = FolderResultsView(settings)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    preds = []
    for i in range(30):
        path = f"/photos/img{i:02d}.png"
        if i == 5:
            preds.append(Prediction(path=path, error=f"{path}: not an image"))
            continue
        conf = 0.999 if i < 7 else 0.4 if i % 3 == 0 else 0.9
        preds.append(Prediction(path=path, label="cat", confidence=conf, top_k=[("cat", conf)], class_index=0,
                                unfamiliar=i < 7, familiarity=0.01 if i < 7 else 0.5))
    view.familiarity_limit = 0.05
    view.start("/photos", "pets")
    view.add_rows(FolderRows(tuple((p, None) for p in preds), 30, 30))
    view.finish(FolderDone(folder="/photos", model_name="pets", total=30, done=30))
    qtbot.waitUntil(lambda: not view.running)
    return view


def test_unfamiliar_confidence_is_greyed_and_sorted_apart(view):
    view.table.sortByColumn(CONFIDENCE_COLUMN, Qt.SortOrder.AscendingOrder)
    statuses = [view.row_status(r) for r in range(view.proxy.rowCount())]
    assert statuses[:7] == ["error"] + ["unfamiliar"] * 6   # then the least confident familiar answers
    assert statuses[7] == "unsure"
    view.table.sortByColumn(CONFIDENCE_COLUMN, Qt.SortOrder.DescendingOrder)
    assert view.row_status(0) == "sure"   # a 99.9 % unfamiliar answer does not top the list
    item = view.table_model.item(0, CONFIDENCE_COLUMN)   # img00: unfamiliar
    assert item.foreground().color() == view.palette().color(QPalette.ColorRole.PlaceholderText)
    assert "means little" in item.toolTip()


def test_rows_are_compact_and_the_filter_counts_each_state(view):
    visible = view.table.rowAt(view.table.viewport().height() - 1)
    assert visible == -1 or visible + 1 >= 15    # at 700 px: 30 rows nearly fit (11 did)
    assert view.table.verticalHeader().defaultSectionSize() == results_table.ROW_HEIGHT
    texts = [view.filter_combo.itemText(i) for i in range(view.filter_combo.count())]
    # img07..29: multiples of 3 at 40 % (not sure): 9, 12, ..., 27 = 7 rows; the other 16 sure
    assert texts == ["All images (30)", "Sure (16)", "Not sure (7)", "Unfamiliar (6)", "Errors (1)"]
    width = view.filter_combo.fontMetrics().horizontalAdvance(view.filter_combo.currentText())
    assert view.filter_combo.sizeHint().width() > width   # the count is not cut off
    view.set_threshold(0.3)
    assert view.filter_combo.itemText(1) == "Sure (23)" and view.status_counts()["unsure"] == 0


def test_familiarity_is_explained_in_the_status_tooltip(view):
    tip = view.table_model.item(10, STATUS_COLUMN).toolTip()
    assert "Familiarity 50%" in tip and "validation images" in tip and "below 5%" in tip


def test_export_asks_and_writes_what_is_shown_or_all_never_into_the_folder(view, tmp_path, monkeypatch):
    starts = []

    def save_name(_parent, _title, start, _filter):
        starts.append(start)
        return str(tmp_path / "out.csv"), ""

    monkeypatch.setattr(folder_results_view.QFileDialog, "getSaveFileName", save_name)
    view.settings.set("predict.last_folder", "/photos")
    view.filter_combo.setCurrentIndex(3)   # unfamiliar: 6 of 30 shown
    monkeypatch.setattr(view, "ask_export_scope", lambda shown: True)
    view.export_csv()
    assert not starts[0].startswith("/photos")
    rows = list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"unfamiliar"}
    monkeypatch.setattr(view, "ask_export_scope", lambda shown: False)
    view.export_csv()
    assert len(list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))) == 30
    assert starts[1] == str(tmp_path / "predictions.csv")   # where the last export went
    monkeypatch.setattr(view, "ask_export_scope", lambda shown: None)   # cancelled: nothing asked, nothing written
    view.export_csv()
    assert len(starts) == 2
