"""The Evaluate tab: figures, confusion matrix with its gallery, per-class table, reliability diagram, export,
cancel; and the ways other tabs open it (Predict's folder view, a finished run's verdict)."""
import csv

from helpers import make_folder_dataset
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from resnet_gui.ui.evaluate.confusion_matrix_view import ConfusionMatrixView

CLASSES = ("zero", "one", "two", "three")


def evaluated(qtbot, tab):
    qtbot.waitUntil(lambda: tab.outcome is not None and not tab.busy(), timeout=120_000)
    return tab.outcome


def test_evaluate_a_class_folder_shows_figures_matrix_table_and_reliability(qtbot, digits_model, evaluate_tab,
                                                                           tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("zero", "one", "two"), per_class=4)
    (data / "cats").mkdir()
    make_folder_dataset(tmp_path / "other", classes=("cats",), per_class=2)
    for f in (tmp_path / "other" / "cats").iterdir():
        f.rename(data / "cats" / f.name)
    tab = evaluate_tab
    assert tab.current_model_name() == "digits"
    tab.data_combo.setCurrentIndex(tab.data_combo.findData("folder"))
    tab.folder_edit.setText(str(data))
    qtbot.mouseClick(tab.evaluate_button, Qt.MouseButton.LeftButton)
    outcome = evaluated(qtbot, tab)
    f = outcome.evaluation.figures
    assert f.n == 12 and abs(f.accuracy - 1 / 3) < 1e-6  # the model calls everything "two"
    assert tab.cards.value("accuracy") == "33.3%" and tab.cards.value("images") == "12"
    assert tab.matrix.count(0, 2) == 4 and tab.matrix.count(2, 2) == 4 and tab.matrix.count(0, 0) == 0
    assert "cats (2)" in tab.banner.text()  # a folder that is not a class is reported, not guessed
    assert "mostly answers 'two'" in tab.verdict_banner.text()  # the honest verdict
    # a model evaluated on other data is not a training run: advice about the data, not training settings
    assert "Check that these images show the classes" in tab.verdict_banner.text()
    assert "Train longer" not in tab.verdict_banner.text() and "--balance" not in tab.verdict_banner.text()
    assert tab.per_class.rowCount() == 4
    recalls = {tab.per_class.item(r, 0).text(): tab.per_class.item(r, 2).text() for r in range(4)}
    assert recalls["two"] == "100.0%"
    assert tab.reliability.stack.currentIndex() == 1 and tab.reliability.bins
    assert "calibration error" in tab.reliability.caption.text().lower()
    # the gallery starts with the mistakes, most confident first
    qtbot.waitUntil(lambda: tab.gallery.count() == 8, timeout=30_000)
    assert all(tab.gallery.row(i)["predicted"] == "two" for i in range(8))
    assert not tab.gallery.list.item(0).icon().isNull()


def test_clicking_a_cell_shows_its_images_and_double_click_opens_predict(qtbot, digits_model, window, tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("zero", "two"), per_class=3)
    tab = window.evaluate_tab
    window.tabs.setCurrentWidget(tab)
    tab.evaluate_folder("digits", str(data))
    evaluated(qtbot, tab)
    rect = tab.matrix.cell_rect(2, 2)
    assert tab.matrix.cell_at(rect.center().toPoint()) == (2, 2)
    qtbot.mouseClick(tab.matrix, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert tab.matrix.selected == (2, 2)
    assert "two, recognised: 3 images" in tab.gallery.title.text()
    qtbot.waitUntil(lambda: tab.gallery.count() == 3, timeout=30_000)
    assert {tab.gallery.row(i)["true"] for i in range(3)} == {"two"}
    item = tab.gallery.list.item(0)
    tab.gallery.list.itemDoubleClicked.emit(item)
    assert window.tabs.currentWidget() is window.predict_tab
    qtbot.waitUntil(lambda: window.predict_tab.single.class_label.text() == "two", timeout=60_000)
    assert window.predict_tab.single.shown_name == tab.gallery.row(0)["path"]


def test_export_writes_rows_figures_per_class_and_a_framed_png(qtbot, digits_model, evaluate_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("one", "two"), per_class=3)
    tab = evaluate_tab
    assert not tab.export_button.isEnabled()
    tab.evaluate_folder("digits", str(data))
    evaluated(qtbot, tab)
    assert tab.export_button.isEnabled()
    tab.show_cell(0, 2)   # a cell selected on screen: not drawn into the export
    csv_path, summary_path, per_class_path, png_path = tab.export(str(tmp_path / "out" / "eval.csv"))
    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert len(rows) == 6 and {r["predicted"] for r in rows} == {"two"}
    assert sum(int(r["correct"]) for r in rows) == 3
    summary = {r["figure"]: r["value"] for r in csv.DictReader(summary_path.read_text().splitlines())}
    assert summary["accuracy"] == "0.500000" and summary["images"] == "6" and summary["model"] == "digits"
    per_class = {r["class"]: r for r in csv.DictReader(per_class_path.read_text().splitlines())}
    assert set(per_class) == {"zero", "one", "two", "three"} and per_class["two"]["recall"] == "1.000000"
    assert per_class["two"]["support"] == "3" and per_class["two"]["sure_from"] == "0.6000"
    image = QImage(str(png_path))
    assert png_path.name == "eval-confusion-matrix.png"
    assert "Saved 6 rows" in tab.banner.text() and "eval-summary.csv" in tab.banner.text()
    _assert_framed(image)
    tab.matrix.select(None)
    tab.export(str(tmp_path / "again" / "eval.csv"))
    assert QImage(str(tmp_path / "again" / "eval-confusion-matrix.png")) == image   # no selection mark in it
    from resnet_gui.core.paths import models_dir

    model = models_dir() / "digits.pth"
    before = model.read_bytes()
    assert tab.export(str(model)) is None  # would replace the model it evaluated
    assert "The evaluation was not saved" in tab.banner.text() and "models folder" in tab.banner.text()
    assert model.read_bytes() == before and not (models_dir() / "digits-confusion-matrix.png").exists()
    assert not (models_dir() / "digits-summary.csv").exists()


def _assert_framed(image: QImage) -> None:
    """Content on every side of the centre, a blank margin all around: nothing clipped, nothing in one corner."""
    import numpy as np

    rgb = image.convertToFormat(QImage.Format.Format_RGB32)   # kept: the array below views its memory
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine() // 4, 4)
    pixels = pixels[:, :rgb.width()].copy()
    ink = np.abs(pixels.astype(int) - pixels[0, 0].astype(int)).sum(2) > 30
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    edges = (rows[0], cols[0], image.height() - 1 - rows[-1], image.width() - 1 - cols[-1])
    assert min(edges) >= 8, (edges, image.width(), image.height())
    used = (rows[-1] - rows[0]) * (cols[-1] - cols[0]) / (image.width() * image.height())
    assert used > 0.6, used   # the figure fills its canvas (a small matrix used to sit in one corner of 1200 x 1200)


def test_cancel_stops_an_evaluation_and_nothing_arrives(qtbot, digits_model, window, tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("one", "two"), per_class=60)
    tab = window.evaluate_tab
    tab.evaluate_folder("digits", str(data))
    assert tab.busy() and tab.cancel_button.isVisible() if tab.isVisible() else tab.busy()
    tab.cancel()
    assert not tab.busy() and "cancelled" in tab.banner.text()
    qtbot.waitUntil(lambda: not window.predict_tab.busy(), timeout=10_000)
    from resnet_gui.ui.common.workers import running_tasks, wait_for_all

    wait_for_all(60_000)
    assert not running_tasks() and tab.outcome is None  # the cancelled result never arrived


def test_bad_data_is_a_sentence(qtbot, digits_model, evaluate_tab, tmp_path):
    empty = tmp_path / "nothing"
    (empty / "cats").mkdir(parents=True)
    tab = evaluate_tab
    tab.evaluate_folder("digits", str(empty))
    qtbot.waitUntil(lambda: tab.banner.kind() == "error", timeout=60_000)
    assert "sub-folder named after one of the model's classes" in tab.banner.text()
    tab.data_combo.setCurrentIndex(tab.data_combo.findData("validation"))
    assert not tab.folder_edit.isVisible()
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.banner.kind() == "error" and "no longer" in tab.banner.text(), timeout=60_000)


def test_predict_folder_laid_out_by_class_shows_accuracy_and_offers_evaluation(qtbot, digits_model, window,
                                                                               tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("one", "two"), per_class=2)
    pt = window.predict_tab
    pt.open_path(str(data))
    qtbot.waitUntil(lambda: pt.folder.table_model.rowCount() == 4 and not pt.busy(), timeout=60_000)
    note = pt.folder.accuracy_note
    assert note.isVisible() and "50.0% right (2 of 4 images)" in note.text()
    button = note.buttons()[0]
    assert button.text() == "Evaluate this folder"
    button.click()
    assert window.tabs.currentWidget() is window.evaluate_tab
    outcome = evaluated(qtbot, window.evaluate_tab)
    assert outcome.request.data == str(data) and abs(outcome.evaluation.figures.accuracy - 0.5) < 1e-6


def test_a_plain_folder_shows_no_accuracy(qtbot, digits_model, predict_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "pets", classes=("cats", "dogs"), per_class=2)
    pt = predict_tab
    pt.open_path(str(data))
    qtbot.waitUntil(lambda: pt.folder.table_model.rowCount() == 4 and not pt.busy(), timeout=60_000)
    assert not pt.folder.accuracy_note.isVisible() and pt.folder.accuracy() is None


def test_matrix_view_draws_counts_describes_cells_and_renders_a_png(qtbot):
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    names = ["a very long class name that must be cut", "b", "c"]
    view.set_matrix(names, [[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    with qtbot.waitSignal(view.cell_clicked) as signal:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.cell_rect(2, 0).center().toPoint())
    assert signal.args == [2, 0]
    assert view.describe(2, 0) == "c, called a very long class name that must be cut: 2 images (33.3% of the 6 " \
                                  "images of c)"
    assert view.cell_at(QPoint(1, 1)) is None
    image = view.to_image(600)
    assert image.width() == 600 and not image.isNull()
    many = [f"class {i}" for i in range(60)]
    view.set_matrix(many, [[int(i == j) * 3 for j in range(60)] for i in range(60)])
    assert view.cell_at(view.cell_rect(59, 59).center().toPoint()) == (59, 59)


def test_cifar10_test_set_with_mirror_images(qtbot, registry_dir, make_window, settings, monkeypatch):
    import torchvision
    from helpers import CIFAR_NAMES, make_checkpoint, make_cifar

    from resnet_gui.core.data.cifar import default_cifar_root

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)  # generated batches

    make_cifar(default_cifar_root(), n_test=30)
    make_checkpoint(registry_dir / "cifar.pth", class_names=CIFAR_NAMES, favour=3)
    window = make_window()
    tab = window.evaluate_tab
    window.tabs.setCurrentWidget(tab)
    tab.select_model("cifar")
    tab.data_combo.setCurrentIndex(tab.data_combo.findData("cifar10"))
    tab.tta_check.setChecked(True)
    tab.evaluate()
    outcome = evaluated(qtbot, tab)
    assert outcome.request.tta and outcome.evaluation.tta and outcome.evaluation.figures.n == 30
    assert tab.cards.value("images") == "30" and tab.matrix.count(3, 3) == 3
    assert settings.get("evaluate.tta") is True and settings.get("evaluate.data") == "cifar10"
    # test images are not files: the gallery names them, without thumbnails, and does not open them
    qtbot.waitUntil(lambda: tab.gallery.count() == 27, timeout=30_000)
    assert tab.gallery.row(0)["path"].startswith("test image ")
    opened = []
    tab.open_image_requested.connect(opened.append)
    tab.gallery.list.itemDoubleClicked.emit(tab.gallery.list.item(0))
    assert opened == [] and window.tabs.currentWidget() is tab


def test_label_mistakes_says_what_it_does_until_a_search_has_results(qtbot, evaluate_tab, tmp_path):
    from resnet_gui.core.evaluation.label_issues import LabelReport
    from resnet_gui.ui.common.label_issues_view import LabelOutcome

    tab = evaluate_tab
    tab.details.setCurrentWidget(tab.labels_page)
    tab.show()
    qtbot.waitUntil(tab.labels_page.isVisible)
    assert tab.details.tabText(tab.details.currentIndex()) == "Label mistakes"
    assert tab.labels_empty.isVisible() and not tab.labels.isVisible()   # no empty table, no disabled buttons
    assert "press Find label mistakes" in tab.labels_empty.text()
    tab._labels_done(LabelOutcome(str(tmp_path), LabelReport("the answers of digits", checked=12)))
    assert tab.labels.isVisible() and not tab.labels_empty.isVisible()
    assert "No likely label mistakes among 12 images" in tab.labels.summary.text()


def test_the_exported_matrix_is_dark_on_white_when_the_app_is_dark(qtbot, digits_model, evaluate_tab, tmp_path):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from resnet_gui.ui.common import theme

    data = make_folder_dataset(tmp_path / "labelled", classes=("one", "two"), per_class=2)
    tab = evaluate_tab
    tab.evaluate_folder("digits", str(data))
    evaluated(qtbot, tab)
    theme.apply(QApplication.instance(), "dark")
    try:
        qtbot.waitUntil(lambda: tab.matrix.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        png_path = tab.export(str(tmp_path / "out" / "eval.csv"))[-1]
    finally:
        theme.apply(QApplication.instance(), "system")
    image = QImage(str(png_path))
    assert image.pixelColor(2, 2) == QColor("#ffffff")   # the paper, not the dark theme's background
    assert any(image.pixelColor(x, y).lightness() < 80 for x in range(0, image.width(), 3)
               for y in range(0, image.height() // 8, 2))   # the title, in dark ink
