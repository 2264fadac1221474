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


def test_a_not_sure_confidence_never_reads_as_reaching_the_threshold(qtbot, settings):
    """At a 99.9 % threshold, a 99.86 % answer is not sure: it shows 99.8 %, not 99.9 % beside a sure 99.9 %
    (also in the class's and the status's tooltips); a threshold change rewrites the figures."""
    view = FolderResultsView(settings)
    qtbot.addWidget(view)
    view.set_threshold(0.999)
    unsure = Prediction(path="/d/d200_1.png", label="1", confidence=0.9986, top_k=[("1", 0.9986), ("7", 0.0014)],
                        class_index=1)
    sure = Prediction(path="/d/d208_0.png", label="0", confidence=0.9991, top_k=[("0", 0.9991)], class_index=0)
    view.start("/d", "digits")
    view.add_rows(FolderRows(((unsure, None), (sure, None)), 2, 2))
    view.finish(FolderDone(folder="/d", model_name="digits", total=2, done=2))
    qtbot.waitUntil(lambda: not view.running)
    shown = {view.table_model.item(r, 1).text(): (view.table_model.item(r, CONFIDENCE_COLUMN).text(),
                                                  view.table_model.item(r, STATUS_COLUMN).text()) for r in range(2)}
    assert shown == {"d200_1.png": ("99.8%", "Not sure"), "d208_0.png": ("99.9%", "Sure")}
    assert view.table_model.item(0, 2).toolTip() == "1 99.8%, 7 0.1%"
    assert "1 does not reach 99.9%: 1 99%" in view.table_model.item(0, STATUS_COLUMN).toolTip()
    view.set_threshold(0.99)
    assert view.table_model.item(0, CONFIDENCE_COLUMN).text() == "99.9%"   # sure now: rounded as usual
    assert view.table_model.item(0, STATUS_COLUMN).text() == "Sure"


def test_an_unfamiliar_rows_tooltips_say_why(qtbot, settings):
    view = FolderResultsView(settings)
    qtbot.addWidget(view)
    dark = Prediction(path="/d/dark.png", label="3", confidence=0.7, top_k=[("3", 0.7)], class_index=3,
                      unfamiliar=True, familiarity=0.0, unfamiliar_why="darker than its training images")
    view.start("/d", "digits")
    view.add_rows(FolderRows(((dark, None),), 1, 1))
    view.finish(FolderDone(folder="/d", model_name="digits", total=1, done=1))
    qtbot.waitUntil(lambda: not view.running)
    why = "This image is darker than its training images."
    assert why in view.table_model.item(0, STATUS_COLUMN).toolTip()
    assert why in view.table_model.item(0, CONFIDENCE_COLUMN).toolTip()
