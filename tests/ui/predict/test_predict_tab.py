import csv

from helpers import write_image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication


def wait_for_label(qtbot, tab, text):
    qtbot.waitUntil(lambda: tab.single.class_label.text() == text, timeout=60_000)


def test_pick_an_image_shows_class_confidence_and_runners_up(qtbot, digits_model, window, tmp_path):
    tab = window.predict_tab
    assert tab.current_model_name() == "digits"
    tab.open_path(str(write_image(tmp_path / "photo.jpg", size=(120, 80), fmt="JPEG")))
    wait_for_label(qtbot, tab, "two")
    assert "sure" in tab.single.confidence_label.text()
    rows = tab.single.topk.rows()
    assert rows[0][0] == "two" and len(rows) == 4
    assert tab.single.preview.image() is not None and tab.single.preview.image().width() == 120
    assert "digits" in window.model_label.text()
    assert not tab.single.error_banner.isVisible()


def looks(widget) -> QImage:
    return widget.grab().toImage()


def test_bad_image_shows_an_inline_error_naming_the_file(qtbot, digits_model, predict_tab, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not really a png")
    tab = predict_tab
    toggle = tab.single.explain_toggle
    # "Show why (heat map)" before any image: disabled, and it looks it (its style sheet made both states alike)
    assert not toggle.isEnabled()
    idle = looks(toggle)
    toggle.setEnabled(True)
    assert looks(toggle) != idle
    toggle.setEnabled(False)
    tab.open_path(str(write_image(tmp_path / "good.png", seed=3)))
    wait_for_label(qtbot, tab, "two")
    assert toggle.isEnabled() and tab.single.explain_combo.isEnabled()
    tab.open_path(str(bad))
    qtbot.waitUntil(lambda: tab.single.error_banner.isVisible(), timeout=60_000)
    assert "broken.png" in tab.single.error_banner.text() and "not an image" in tab.single.error_banner.text()
    assert not tab.single.class_label.isVisible()  # no class is shown for a file that failed
    assert not toggle.isEnabled() and looks(toggle) == idle  # nothing to explain after an unreadable file


def test_folder_with_one_bad_file(qtbot, digits_model, predict_tab, tmp_path):
    folder = tmp_path / "batch"
    for i in range(3):
        write_image(folder / f"img{i}.png", seed=i)
    (folder / "zz_bad.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    tab = predict_tab
    tab.open_path(str(folder))
    qtbot.waitUntil(lambda: tab.folder.table_model.rowCount() == 4 and not tab.busy(), timeout=60_000)
    assert tab.stack.currentIndex() == 1
    labels = sorted(tab.folder.table_model.item(r, 2).text() for r in range(4))
    assert labels == ["Error", "two", "two", "two"]
    assert tab.folder.folder_errors.isVisible() and "1 file could not be classified" in tab.folder.folder_errors.text()
    assert "zz_bad.jpg" in tab.folder.folder_errors.text()
    # lowest confidence first puts the failed file on top
    tab.folder.lowest_button.click()
    assert tab.folder.proxy.index(0, 1).data() == "zz_bad.jpg"
    out = tmp_path / "out.csv"
    tab.folder.write_csv(str(out))
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 4 and sum(1 for r in rows if r["error"]) == 1
    before = (folder / "img1.png").read_bytes()
    tab.folder.write_csv(str(folder / "img1.png"))  # an image it read: refused, as the app's folders are
    assert "one of the files being read" in tab.folder.folder_errors.text()
    assert (folder / "img1.png").read_bytes() == before
    # double-clicking a row shows that image
    tab.folder._row_activated(tab.folder.proxy.index(1, 1))
    wait_for_label(qtbot, tab, "two")
    assert tab.stack.currentIndex() == 0


def test_paste_and_drop(qtbot, digits_model, window, tmp_path):
    tab = window.predict_tab
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    QApplication.clipboard().setImage(image)
    tab.paste()
    wait_for_label(qtbot, tab, "two")
    assert tab.single.file_label.text() == "pasted image"
    tab.single.class_label.setText("—")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(write_image(tmp_path / "dropped.png")))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_for_label(qtbot, tab, "two")
    assert tab.single.file_label.text() == "dropped.png"


def test_empty_clipboard_is_a_message(qtbot, digits_model, predict_tab):
    QApplication.clipboard().clear()
    predict_tab.paste()
    assert "clipboard holds no image" in predict_tab.single.error_banner.text()


def test_image_opened_before_torch_is_ready_runs_when_it_is(qtbot, digits_model, settings, tmp_path):
    from resnet_gui.ui.main_window import MainWindow

    w = MainWindow(settings)
    w.show()
    try:
        w.predict_tab.open_path(str(write_image(tmp_path / "early.png")))
        assert "Starting up" in w.predict_tab.single.confidence_label.text()
        w.start_background_loading()
        wait_for_label(qtbot, w.predict_tab, "two")
    finally:
        w.close()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
        w.deleteLater()
