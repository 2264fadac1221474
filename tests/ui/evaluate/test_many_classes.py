"""200 and 1,000 classes stay readable (issue 27, item 9): a heat map above 30 classes with hover, zoom and the
most-missed classes first, the most confused pairs with their images, a searchable per-class table."""
import numpy as np
import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QPainter

from resnet_gui.core.evaluation.metrics import figures, most_confused
from resnet_gui.ui.evaluate.confused_pairs import ConfusedPairs
from resnet_gui.ui.evaluate.matrix_panel import MatrixPanel
from resnet_gui.ui.evaluate.per_class_table import COLUMNS, PerClassTable, with_filter


def _matrix(n, seed=0):
    rng = np.random.default_rng(seed)
    cm = np.diag(rng.integers(20, 30, n))
    for _ in range(n * 3):
        cm[rng.integers(n), rng.integers(n)] += rng.integers(1, 4)
    cm[7, 3] += 40   # the most confused pair
    return cm


def test_most_confused_pairs_are_ranked_and_a_click_shows_them(qtbot):
    cm = _matrix(200)
    names = [f"bird species {i:03d}" for i in range(200)]
    pairs = most_confused(cm, names, limit=50)
    assert pairs[0]["true"] == names[7] and pairs[0]["predicted"] == names[3] and pairs[0]["count"] == cm[7, 3]
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    assert all(p["true_index"] != p["predicted_index"] for p in pairs) and len(pairs) == 50
    view = ConfusedPairs()
    qtbot.addWidget(view)
    view.set_pairs(pairs, int(cm.sum() - np.trace(cm)))
    assert view.table.rowCount() == 50 and "50 pairs of classes confused" in view.caption.text()
    with qtbot.waitSignal(view.pair_clicked) as clicked:
        view.table.cellClicked.emit(0, 1)
    assert clicked.args == [7, 3]


def test_a_heat_map_above_30_classes_with_hover_zoom_and_errors_first(qtbot):
    panel = MatrixPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 520)
    panel.show()
    cm = _matrix(200)
    names = [f"bird species {i:03d}" for i in range(200)]
    panel.set_matrix(names, cm.tolist())
    view = panel.view
    assert view.heat_map() and panel.order_combo.isVisible()
    centre = view.cell_rect(10, 10).center().toPoint()
    assert view.cell_at(centre) == (10, 10)
    panel.order_combo.setCurrentIndex(1)   # most missed first
    missed = cm.sum(1) - np.diag(cm)
    assert view.order[0] == int(np.argmax(missed)) and view.cell_at(view.cell_rect(7, 3).center().toPoint()) == (7, 3)
    assert "bird species 007, called bird species 003" in view.describe(7, 3)
    small = view.width()
    panel.zoom_by(3)
    qtbot.waitUntil(lambda: view.width() > 2 * small)
    assert panel.zoom == 3 and panel.scroll.horizontalScrollBar().maximum() > 0
    panel.set_zoom(1)
    assert panel.zoom == 1 and not panel.out_button.isEnabled()


@pytest.mark.parametrize("n", [200, 1000])
def test_many_classes_are_drawn_as_one_heat_map_image(qtbot, n):
    """The heat map is one image, one pixel per cell (benchmarks/bench_matrix.py times it); the mistakes show red."""
    panel = MatrixPanel()
    qtbot.addWidget(panel)
    cm = _matrix(n)
    panel.set_matrix([f"class {i}" for i in range(n)], cm.tolist())
    image = QImage(900, 900, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    panel.view.paint(painter, QRect(0, 0, 900, 900), panel.view.palette(), panel.view.font())
    painter.end()
    heat = panel.view._heat_image(panel.view.palette())
    assert (heat.width(), heat.height()) == (n, n)
    red, diagonal, empty = heat.pixelColor(3, 7), heat.pixelColor(5, 5), panel.view.palette().base().color()
    assert red.red() > red.blue() + 60 and diagonal != empty
    zero = np.argwhere(cm == 0)[0]
    assert heat.pixelColor(int(zero[1]), int(zero[0])).rgb() == empty.rgb()


def test_the_per_class_table_finds_a_class_among_hundreds(qtbot):
    rng = np.random.default_rng(0)
    true = rng.integers(0, 200, 4000)
    probs = rng.random((4000, 200)).astype(np.float32)
    probs[np.arange(4000), true] += 2
    f = figures(probs / probs.sum(1, keepdims=True), true, [f"bird species {i:03d}" for i in range(200)])
    table = PerClassTable()
    page = with_filter(table)
    qtbot.addWidget(page)
    table.set_classes(f.per_class)
    assert table.rowCount() == 200
    page.find_edit.setText("species 19")
    shown = [table.item(r, 0).text() for r in range(200) if not table.isRowHidden(r)]
    assert sorted(shown) == [f"bird species {i}" for i in range(190, 200)]
    page.find_edit.clear()
    assert not any(table.isRowHidden(r) for r in range(200))


def test_the_exported_figure_of_200_classes_has_readable_labels(qtbot):
    panel = MatrixPanel()
    qtbot.addWidget(panel)
    panel.set_matrix([f"c{i}" for i in range(200)], _matrix(200).tolist())
    image = panel.view.export_image("200 classes")
    assert image.width() >= 200 * 15 and image.height() >= 200 * 15   # a line's height per cell: labels fit
    assert image.width() < 6000



def test_the_per_class_rows_follow_the_headers_sort_arrow_flagged_classes_included(qtbot):
    from PySide6.QtCore import Qt

    from resnet_gui.core.evaluation.metrics import ClassFigures

    # classes 0-2 recognised far less often than class 3 (flagged ⚠), and names whose text order is not numeric
    per_class = [ClassFigures(name, 0.2, 0.1, 0.13, 10) for name in ("0", "1", "2", "10")]
    per_class.append(ClassFigures("3", 0.9, 0.95, 0.92, 10))
    table = PerClassTable()
    qtbot.addWidget(table)
    table.set_classes(per_class)
    header = table.horizontalHeader()
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert header.isSortIndicatorShown() and header.sortIndicatorSection() == 0
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert names == ["⚠ 0", "⚠ 1", "⚠ 2", "3", "⚠ 10"]  # by class, the flags only marked
    table.sortByColumn(COLUMNS.index("Recall"), Qt.SortOrder.DescendingOrder)
    recalls = [table.item(r, COLUMNS.index("Recall")).data(Qt.ItemDataRole.UserRole) for r in range(5)]
    assert recalls == sorted(recalls, reverse=True) and table.item(0, 0).text() == "3"
    table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert [table.item(r, 0).text() for r in range(5)] == names[::-1]
